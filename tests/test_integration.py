"""The real entry points end to end: a 2-job Hydra multirun, the collection step and every figure."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT, job, run_cli


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, mnist_data):
    out = tmp_path_factory.mktemp("sweep")
    res = run_cli("-m", "experiment=mnist_bn", "model.norm=none,batch", "trainer.max_steps=300",
                  "trainer.eval_every=100", "trainer.probe_every=50", "logger=none",
                  f"hydra.sweep.dir={out}", *mnist_data["overrides"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out, res


@pytest.mark.integration
def test_each_job_writes_its_own_complete_run_folder(sweep, mnist_data):
    out, res = sweep
    jobs = sorted(p for p in out.iterdir() if p.is_dir() and (p / "run.json").exists())
    # Each job's folder is named by its settings, so jobs never share one.
    assert sorted(p.name.split(",")[0] for p in jobs) == ["model.norm=batch", "model.norm=none"]
    for folder in jobs:
        info = json.loads((folder / "run.json").read_text())
        assert info["status"] == "completed" and info["steps_done"] == 300
        assert info["data_official"] is mnist_data["real"]
        for key in ("wall_time_s", "torch", "python", "git_commit", "git_dirty"):
            assert key in info
        assert (folder / "config_resolved.yaml").is_file()
    assert "step 300/300" in res.stdout + res.stderr  # progress is shown
    assert "test_acc 0." in res.stdout and "(step 300)" in res.stdout  # which step the test accuracy is from


@pytest.mark.integration
def test_metrics_schema(sweep):
    out, _ = sweep
    df = pd.read_parquet(job(out, "model.norm=batch") / "metrics.parquet")
    for col in ("step", "split", "metric", "value", "variant", "lr", "seed", "experiment"):
        assert col in df.columns
    assert set(df["split"].astype(str)) == {"train", "test", "probe"}
    train = df[(df["split"] == "train") & (df["metric"] == "loss")]
    assert train["step"].tolist() == list(range(10, 301, 10))  # stored every 10 steps
    test = df[(df["split"] == "test") & (df["metric"] == "acc")]
    assert test["step"].tolist() == [0, 100, 200, 300]
    probe = df[df["split"] == "probe"]
    assert sorted(probe["step"].unique()) == list(range(0, 301, 50))
    assert "act/layer3/pooled/p50" in set(probe["metric"]) and "act/layer1/unit/p15" in set(probe["metric"])
    assert df["variant"].iloc[0] == "batch" and df["lr"].iloc[0] == 0.01
    # Percentiles are ordered, and the loss went down.
    name = probe["metric"].str.rsplit("/", n=1)
    p = probe.pivot_table(index=["step", name.str[0]], columns=name.str[1], values="value", observed=True)
    assert (p["p15"] <= p["p50"]).all() and (p["p50"] <= p["p85"]).all()
    assert train["value"].iloc[-1] < train["value"].iloc[0]


@pytest.mark.e2e
def test_collect_and_figures_from_stored_metrics(sweep, tmp_path):
    out, _ = sweep
    results = tmp_path / "results"
    py = sys.executable
    subprocess.run([py, str(ROOT / "experiments" / "collect.py"), str(out), "--out", str(results / "mnist_bn")],
                   check=True, capture_output=True)
    res = subprocess.run([py, str(ROOT / "experiments" / "figures.py"), "mnist_bn", "--results", str(results)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    folder = results / "mnist_bn"
    for name in ("fig2_training_curves", "fig3_last_layer_percentiles", "fig4_hidden_layers"):
        for ext in ("png", "pdf"):
            assert (folder / f"{name}.{ext}").stat().st_size > 5000
    summary = pd.read_csv(folder / "summary.csv")
    assert sorted(summary["variant"]) == ["batch", "none"]
    for col in ("final_test_acc", "best_test_acc", "step_to_90", "step_to_95", "step_to_97", "seed"):
        assert col in summary.columns
    assert (summary["best_test_acc"] >= summary["final_test_acc"]).all()
    assert "final_test_acc" in res.stdout  # the summary is printed
