"""Longer checks, excluded from `make test` (run `make test-slow`)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED, job, run_cli

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(not (SHARED / "MNIST").is_dir(), reason="needs the real MNIST in ../shared/datasets")
def test_bn_learns_faster_than_no_bn_on_real_mnist(tmp_path):
    """The paper's claim at 5k steps: with BN the network is already far more accurate."""
    res = run_cli("-m", "experiment=mnist_bn", "model.norm=none,batch", "trainer.max_steps=5000",
                  "trainer.probe_every=0", "logger=none", "hydra/launcher=parallel", f"hydra.sweep.dir={tmp_path}",
                  f"data.root={SHARED}")
    assert res.returncode == 0, res.stderr[-2000:]
    acc = {}
    for norm in ("none", "batch"):
        acc[norm] = json.loads((job(tmp_path, f"model.norm={norm}") / "run.json").read_text())["final_test_acc"]
    assert acc["batch"] > 0.85 and acc["batch"] > acc["none"] + 0.1


@pytest.mark.skipif(not (SHARED / "MNIST").is_dir(), reason="the benchmark runs on the real MNIST")
def test_bench_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("BNREPRO_DATA", str(SHARED))
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=3600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    data = json.loads(out.read_text())
    for key in ("overhead", "pair", "pair_notebook_cadence", "two_cores", "vs_typical_loop"):
        assert key in data
    assert "speed-up over the typical loop" in res.stdout


@pytest.mark.parametrize("experiment, cadence, probe", [
    ("ics_full", "trainer.ics_every=2", "ics/layer10/cos"),
    ("landscape_full", "trainer.landscape_every=2", "landscape/beta"),
    ("lp_norm_full", "trainer.probe_every=2", "act/layer11/pooled/p50"),
])
def test_full_protocol_configs_run_at_full_width(tmp_path, cifar_data, experiment, cadence, probe):
    """The GPU protocols, two steps on the CPU: full-width VGG-16, the probes as configured (the landscape's eight
    step sizes as one vmap batch)."""
    import pandas as pd

    res = run_cli(f"experiment={experiment}", "trainer.max_steps=2", "trainer.eval_every=0", cadence,
                  "logger=none", "device=cpu", f"hydra.run.dir={tmp_path}",
                  *cifar_data["overrides"], timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "completed"
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    assert probe in set(m["metric"].astype(str))
