"""(lr=1e38 overflows the logits to inf within a few steps; a sigmoid MLP survives even 1e30.)
A diverging job is a result: recorded as 'diverged', it never stops the sweep, and the sweep figure shows it."""

import json
import math

import pandas as pd
import pytest

from bnrepro.collect import write_results
from bnrepro.figures import load
from bnrepro.figures import sweep as sweep_fig
from tests.conftest import run_cli


@pytest.mark.e2e
def test_diverged_run_is_recorded_and_the_sweep_goes_on(tmp_path, mnist_data):
    out = tmp_path / "sweep"
    res = run_cli("-m", "experiment=mnist_lr_sweep", "model.norm=none", "optim.lr=1e38,0.1", "trainer.max_steps=200",
                  "trainer.eval_every=100", "trainer.probe_every=50", "logger=none",
                  f"hydra.sweep.dir={out}", *mnist_data["overrides"])
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    infos = {json.loads((p / "run.json").read_text())["status"]: p.name for p in out.iterdir() if p.is_dir()}
    assert set(infos) == {"diverged", "completed"}
    diverged = json.loads((out / infos["diverged"] / "run.json").read_text())
    assert diverged["steps_done"] < 200 and diverged["diverged_at_step"] == diverged["steps_done"]
    m = pd.read_parquet(out / infos["diverged"] / "metrics.parquet")
    last_loss = m[(m["split"] == "train") & (m["metric"] == "loss")]["value"].iloc[-1]
    assert not math.isfinite(last_loss)  # the NaN/inf is kept as the result

    results = tmp_path / "results"
    write_results([out], results)
    stored = load(results)
    paths = sweep_fig.fig_lr_sweep(stored.metrics, stored.runs, results)
    assert {p.name for p in paths} == {"fig_lr_sweep.png", "fig_lr_sweep.pdf"}
    table = pd.read_csv(results / "sweep_summary.csv")
    assert table.set_index("lr").loc[1e38, "diverged"] and not table.set_index("lr").loc[0.1, "diverged"]


@pytest.mark.e2e
def test_a_loss_explosion_is_divergence_and_the_sweep_goes_on(tmp_path, mnist_data):
    """lr 10000 without BN: finite losses of ~1e5 at chance accuracy, which a user calls divergence."""
    out = tmp_path / "sweep"
    res = run_cli("-m", "experiment=mnist_lr_sweep", "model.norm=none", "optim.lr=10000,0.1", "trainer.max_steps=200",
                  "trainer.eval_every=50", "logger=none", f"hydra.sweep.dir={out}", *mnist_data["overrides"])
    assert res.returncode == 0, res.stderr[-3000:]
    infos = [json.loads(p.read_text()) for p in sorted(out.glob("*/run.json"))]
    status = sorted(i["status"] for i in infos)
    assert status == ["completed", "diverged"]
    diverged = next(i for i in infos if i["status"] == "diverged")
    assert diverged["diverged_at_step"] == 10 and diverged["steps_done"] == 10  # stops, by default
    assert "divergence_threshold" not in res.stderr  # no config error: a result


@pytest.mark.integration
def test_a_run_over_the_threshold_can_train_on(tmp_path, mnist_data):
    from bnrepro.run import train
    from tests.conftest import make_cfg, small_overrides

    info = train(make_cfg(*small_overrides(mnist_data, steps=100), "model.norm=none", "optim.lr=10000",
                          "trainer.stop_on_divergence=false"), tmp_path)
    assert info["status"] == "diverged" and info["diverged_at_step"] == 10 and info["steps_done"] == 100
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    assert m[(m["split"] == "train") & (m["metric"] == "loss")]["step"].max() == 100  # the whole curve
