"""collect on tiny run folders: adding runs beside results already collected, and refusing a run twice."""

import json

import pandas as pd
import pytest

from bnrepro.collect import write_results

pytestmark = pytest.mark.unit


def fake_run(folder, variant: str, seed: int, acc: float, diff: str = "") -> None:
    folder.mkdir(parents=True)
    rows = [{"step": s, "split": "test", "metric": "acc", "value": acc * s / 100, "experiment": "toy",
             "variant": variant, "lr": 0.1, "seed": seed} for s in (0, 50, 100)]
    pd.DataFrame(rows).to_parquet(folder / "metrics.parquet", index=False)
    (folder / "run.json").write_text(json.dumps({"status": "completed", "steps_done": 100, "max_steps": 100,
                                                 "final_test_acc": acc, "git_commit": "abc", "git_dirty": bool(diff)}))
    if diff:
        (folder / "code.diff").write_text(diff)


def test_add_keeps_the_runs_already_collected(tmp_path):
    fake_run(tmp_path / "grid" / "a0", "batch", 0, 0.9)
    fake_run(tmp_path / "grid" / "b0", "none", 0, 0.7)
    fake_run(tmp_path / "extra" / "c0", "layer", 0, 0.8)
    out = tmp_path / "results" / "toy"
    write_results([tmp_path / "grid"], out)
    write_results([tmp_path / "extra"], out, add=True)
    runs, metrics = pd.read_csv(out / "runs.csv"), pd.read_parquet(out / "metrics.parquet")
    assert sorted(runs["variant"]) == ["batch", "layer", "none"]
    assert len(metrics) == 9 and metrics.groupby("run_id", observed=True).size().eq(3).all()
    final = metrics[metrics["step"] == 100]
    assert dict(zip(final["variant"].astype(str), final["value"])) == pytest.approx(
       {"batch": 0.9, "none": 0.7, "layer": 0.8})

    with pytest.raises(ValueError, match="already in"):
        write_results([tmp_path / "extra"], out, add=True)
    assert len(pd.read_csv(out / "runs.csv")) == 3  # nothing written by the refused call

    write_results([tmp_path / "extra"], out)  # without add: the folder holds these runs alone
    assert list(pd.read_csv(out / "runs.csv")["variant"]) == ["layer"]


def test_add_needs_results_to_add_to(tmp_path):
    fake_run(tmp_path / "extra" / "c0", "layer", 0, 0.8)
    with pytest.raises(FileNotFoundError, match="nothing to add to"):
        write_results([tmp_path / "extra"], tmp_path / "results" / "toy", add=True)


def test_a_summary_names_the_settings_its_runs_differ_in(tmp_path):
    """Runs that differ only in their batch size (mnist_batch_size) are told apart, and ordered, by it."""
    from bnrepro.collect import summarize

    rows = [{"step": s, "split": "test", "metric": "acc", "value": 0.5, "experiment": "toy", "variant": "batch",
             "lr": 0.1, "seed": 0, "batch_size": b, "momentum": 0.0, "run_id": f"r{b}"}
            for b in (256, 8, 60) for s in (0, 100)]
    runs = pd.DataFrame({"run_id": ["r256", "r8", "r60"], "status": "completed"})
    table = summarize(pd.DataFrame(rows), runs)
    assert list(table["batch_size"]) == [8, 60, 256] and "momentum" not in table  # the same for every run
    one = summarize(pd.DataFrame([r for r in rows if r["batch_size"] == 8]), runs)
    assert "batch_size" not in one


def test_replace_puts_a_rerun_in_place_of_the_run_with_its_identity(tmp_path):
    fake_run(tmp_path / "grid" / "a0", "batch", 0, 0.9)
    fake_run(tmp_path / "grid" / "b0", "none", 0, 0.7, diff="--- a/src/x.py\n+++ b/src/x.py\n")
    fake_run(tmp_path / "rerun" / "b0-clean", "none", 0, 0.6)
    out = tmp_path / "results" / "toy"
    write_results([tmp_path / "grid"], out)
    (kept,) = (out / "code_diffs").glob("*.diff")  # the dirty run's diff is kept beside its results, run named
    assert kept.read_text() == "# run grid/b0\n--- a/src/x.py\n+++ b/src/x.py\n"
    write_results([tmp_path / "rerun"], out, replace=True)
    assert not list((out / "code_diffs").glob("*.diff"))  # the clean rerun leaves no stale diff
    runs, metrics = pd.read_csv(out / "runs.csv"), pd.read_parquet(out / "metrics.parquet")
    assert sorted(runs["variant"]) == ["batch", "none"] and len(metrics) == 6
    final = metrics[metrics["step"] == 100]
    assert dict(zip(final["variant"].astype(str), final["value"])) == pytest.approx({"batch": 0.9, "none": 0.6})

    fake_run(tmp_path / "other" / "c0", "layer", 0, 0.8)  # nothing to replace: refused, nothing written
    with pytest.raises(ValueError, match="match no single run"):
        write_results([tmp_path / "other"], out, replace=True)
    assert len(pd.read_csv(out / "runs.csv")) == 2
