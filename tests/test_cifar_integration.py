"""The CIFAR experiment through the real entry point: a short multirun over the three networks."""

import json

import pandas as pd
import pytest

from tests.conftest import job, run_cli

pytestmark = pytest.mark.e2e


def test_twenty_steps_per_variant(tmp_path, cifar_data):
    res = run_cli("-m", "experiment=cifar_bn_small", "model.norm=none,batch,noisy_batch", "optim.lr=0.1",
                  "trainer.max_steps=20", "trainer.eval_every=10", "trainer.probe_every=10", "trainer.batch_size=32",
                  "probe.batch_size=32", "logger=none",
                  f"hydra.sweep.dir={tmp_path}", *cifar_data["overrides"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    variants = []
    for norm in ("none", "batch", "noisy_batch"):
        folder = job(tmp_path, f"model.norm={norm}")
        info = json.loads((folder / "run.json").read_text())
        assert info["status"] == "completed" and info["steps_done"] == 20
        assert info["data_official"] is False  # the offline copies are never passed off as CIFAR-10
        m = pd.read_parquet(folder / "metrics.parquet")
        variants.append(m["variant"].iloc[0])
        probe = set(m.loc[m["split"] == "probe", "metric"].astype(str))
        for layer in ("layer2", "layer3", "layer9", "layer11", "layer13"):  # the paper's Fig 2 and 1c layers only
            for key in ("pooled/p5", "pooled/p95", "unit/p1", "unit/p50", "unit/p99", "pooled/mean", "pooled/std",
                        "unit/mean", "unit/dmean", "pooled/dvar"):
                assert f"act/{layer}/{key}" in probe
        assert not any(k.startswith("act/layer1/") for k in probe)
        deltas = m[m["metric"].astype(str).str.endswith("/dmean")]
        assert sorted(deltas["step"].unique()) == [1, 11] and (deltas["value"] >= 0).all()  # one step after probes
        test = m[(m["split"] == "test") & (m["metric"] == "acc")]
        assert test["step"].tolist() == [0, 10, 20] and test["value"].between(0, 1).all()
    assert variants == ["none", "batch", "noisy_batch"]
    results = tmp_path / "results"
    for script, args in (("collect.py", [str(tmp_path), "--out", str(results / "cifar_bn")]),
                         ("figures.py", ["cifar_bn", "--results", str(results)])):
        out = run_cli(*args, script=script)
        assert out.returncode == 0, out.stderr[-3000:]
    for name in ("fig_santurkar1_training", "fig_santurkar1c_histograms", "fig_santurkar2_noisy_bn",
                 "fig_santurkar2_noisy_bn_pooled", "fig_santurkar8_moments"):
        assert (results / "cifar_bn" / f"{name}.png").stat().st_size > 5000, name


def test_unknown_probe_layer_is_a_config_error(tmp_path, cifar_data):
    res = run_cli("experiment=cifar_bn_small", "probe.layers=[layer2,layer99]", "probe.batch_size=32",
                  "trainer.max_steps=2", "logger=none",
                  f"hydra.run.dir={tmp_path}", *cifar_data["overrides"])
    assert res.returncode == 2 and "probe.layers" in res.stdout + res.stderr


def test_bf16_autocast_and_channels_last_run(tmp_path, cifar_data):
    res = run_cli("experiment=cifar_bn_small", "trainer.amp=bf16", "trainer.channels_last=true", "trainer.max_steps=5",
                  "trainer.eval_every=5", "trainer.probe_every=5", "trainer.batch_size=16", "probe.batch_size=16",
                  "logger=none", f"hydra.run.dir={tmp_path}", *cifar_data["overrides"])
    assert res.returncode == 0, res.stderr[-2000:]
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "completed" and 0 <= info["final_test_acc"] <= 1
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    assert m[m["split"] == "train"]["value"].notna().all()
