"""Sweepers besides Hydra's basic one: preflight reads their search spaces (interval(), choice(), range()) through
Hydra's override parser, and hydra/sweeper=optuna runs a study end to end, each trial a run folder like any other."""

import json
from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from bnrepro.config.preflight import sweep_jobs, sweep_values
from tests.conftest import run_cli


def parse(*overrides: str):
    return OverridesParser.create().parse_overrides(list(overrides))


@pytest.mark.unit
def test_a_search_space_is_checked_at_its_corners():
    lr, norm, steps, seed = parse("optim.lr=tag(log,interval(0.001,1))", "model.norm=choice(none,batch)",
                                  "trainer.max_steps=range(10,30,10)", "seed=3")
    assert sweep_values(lr) == ["optim.lr=0.001", "optim.lr=1.0"]
    assert sweep_values(norm) == ["model.norm=none", "model.norm=batch"]
    assert sweep_values(steps) == ["trainer.max_steps=10", "trainer.max_steps=20"]
    assert sweep_values(seed) == ["seed=3"]
    jobs = sweep_jobs([lr, norm, seed])
    assert len(jobs) == 4 and ["optim.lr=1.0", "model.norm=none", "seed=3"] in jobs


@pytest.mark.unit
def test_a_key_given_twice_takes_its_last_values():
    """hydra.sweeper.params come first, the command line after: its value wins, as in Hydra's sweepers."""
    assert sweep_jobs(parse("model.norm=none,batch", "seed=0", "model.norm=layer")) == [["model.norm=layer", "seed=0"]]


def _study(tmp_path: Path, mnist_data, *extra: str):
    return run_cli("-m", "experiment=mnist_bn", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3",
                   "hydra.sweeper.sampler.seed=0", "model.norm=batch", "trainer.max_steps=30", "trainer.eval_every=30",
                   "logger=none", f"hydra.sweep.dir={tmp_path}", *extra, *mnist_data["overrides"])


@pytest.mark.e2e
def test_an_optuna_study_runs_each_trial_as_a_run_and_minimises_the_test_loss(tmp_path, mnist_data):
    res = _study(tmp_path, mnist_data, "optim.lr=tag(log,interval(0.01,1))")
    assert res.returncode == 0, res.stderr[-2000:]
    runs = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/run.json"))]
    assert len(runs) == 3 and all(r["status"] == "completed" for r in runs)
    result = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    best = min(runs, key=lambda r: r["final_test_loss"])
    assert result["best_value"] == pytest.approx(best["final_test_loss"])
    # Folder names carry the sampled value rounded to 12 digits, the trial's value in full
    assert f"optim.lr={result['best_params']['optim.lr']:.12g}" in Path(best["run_dir"]).name
    assert all(0.01 <= float(Path(r["run_dir"]).name.split("optim.lr=")[1].split(",")[0]) <= 1 for r in runs)

    # The same command with the same sampler seed proposes the same trials, finds them finished and trains nothing
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/metrics.parquet")}
    again = _study(tmp_path, mnist_data, "optim.lr=tag(log,interval(0.01,1))")
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/metrics.parquet")} == mtimes
    assert yaml.safe_load((tmp_path / "optimization_results.yaml").read_text()) == result


@pytest.mark.e2e
def test_a_search_space_with_a_bad_corner_stops_before_any_folder(tmp_path, mnist_data):
    res = _study(tmp_path / "study", mnist_data, "optim.lr=interval(0,1)")
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "optim.lr=0.0 must be > 0" in lines[0], res.stderr
    assert not (tmp_path / "study").exists()


@pytest.mark.unit
def test_a_search_gets_a_sweep_folder_of_its_own():
    """hydra/sweeper=optuna: runs/<experiment>@optuna-<time>/, the same for every job and trial of the command (its
    multirun.yaml never replaces a grid sweep's in runs/<experiment>/); the grid sweeper keeps runs/<experiment>/."""
    from bnrepro.config.hydra import experiment_folder

    assert experiment_folder("mnist_bn", False, "basic") == "mnist_bn"
    search = experiment_folder("mnist_bn", False, "optuna")
    assert search.startswith("mnist_bn@optuna-") and experiment_folder("mnist_bn", False, "optuna") == search
