"""The CIFAR experiment through the real entry point: a short multirun over the three networks."""

import json

import pandas as pd

from tests.conftest import run_cli


def test_twenty_steps_per_variant(tmp_path, cifar_data):
    res = run_cli("-m", "experiment=cifar_bn_small", "model.norm=none,batch,noisy_batch", "trainer.max_steps=20",
                  "trainer.eval_every=10", "trainer.probe_every=10", "trainer.batch_size=32", "probe.batch_size=32",
                  "logger=none",
                  f"hydra.sweep.dir={tmp_path}", *cifar_data["overrides"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    variants = []
    for job in ("0", "1", "2"):
        info = json.loads((tmp_path / job / "run.json").read_text())
        assert info["status"] == "completed" and info["steps_done"] == 20
        assert info["data_official"] is False  # the offline copies are never passed off as CIFAR-10
        m = pd.read_parquet(tmp_path / job / "metrics.parquet")
        variants.append(m["variant"].iloc[0])
        probe = set(m.loc[m["split"] == "probe", "metric"].astype(str))
        for layer in ("layer2", "layer9", "layer13"):  # the paper's Fig 2 layers, and only those
            for key in ("pooled/p5", "pooled/p95", "unit/p50", "pooled/mean", "pooled/std"):
                assert f"act/{layer}/{key}" in probe
        assert not any(k.startswith("act/layer1/") for k in probe)
        deltas = m[m["metric"].astype(str).str.endswith("/dmean")]
        assert sorted(deltas["step"].unique()) == [1, 11] and (deltas["value"] >= 0).all()  # one step after probes
        test = m[(m["split"] == "test") & (m["metric"] == "acc")]
        assert test["step"].tolist() == [0, 10, 20] and test["value"].between(0, 1).all()
    assert variants == ["none", "batch", "noisy_batch"]


def test_unknown_probe_layer_is_a_config_error(tmp_path, cifar_data):
    res = run_cli("experiment=cifar_bn_small", "probe.layers=[layer2,layer99]", "probe.batch_size=32", "trainer.max_steps=2",
                  "logger=none",
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
