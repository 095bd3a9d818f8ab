"""Gather run folders (metrics.parquet + run.json) into one results table, and summarise it.

Figures and the report read only what this writes; nothing here trains.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from bnrepro import ResultsError
from bnrepro.metrics import RUN_KEYS, SETTINGS, check_schema, read_results, read_table, write_parquet
from bnrepro.runinfo import FINISHED, read_json

THRESHOLDS = (0.90, 0.95, 0.97)
DIFFS = "code_diffs"  # results/<name>/code_diffs/<run>.diff: what a run made from a dirty tree ran beyond its commit
# A result is made of finished runs (runinfo.FINISHED). With partial=True, runs stopped before their last step
# count too (up to where they stopped; runs.csv says so): for a protocol that could not be run to its end, such as
# a GPU lease that ran out. A run that still says 'running' was stopped without its last write; its metrics go up
# to its last checkpoint.
PARTIAL = FINISHED + ("interrupted", "running")


def find_runs(roots: list[Path]) -> list[tuple[str, Path]]:
    """(run_id, folder) of every job folder (one with a run.json, or with the config a run writes first); the id is
    the folder relative to its sweep's parent, never a machine's absolute path."""
    runs = sorted({(f"{Path(root).name}/{p.parent.relative_to(root)}", p.parent) for root in roots
                   for name in ("run.json", "config_resolved.yaml") for p in Path(root).rglob(name)})
    if not runs:
        raise FileNotFoundError(f"no run.json under {', '.join(map(str, roots))}")
    return runs


def load_runs(roots: list[Path], skipped: list[str] | None = None,
              partial: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All metric rows and one row of run.json facts per finished run (completed or diverged; with `partial`, also
    interrupted ones). Other runs are left out, each named in `skipped` with why."""
    frames, infos = [], []
    for run_id, run in find_runs(roots):
        info = read_json(run / "run.json")
        if info is None and (run / "run.json").is_file():
            raise ResultsError(f"{run / 'run.json'} cannot be read: run that job again (its training command, with "
                               "force=true), or leave its folder out")
        status = info.get("status") if info else "no run.json"
        if status not in (PARTIAL if partial else FINISHED):
            if skipped is not None:
                skipped.append(f"{run_id} ({status})")
            continue
        metrics_file = run / "metrics.parquet"
        df = read_table(metrics_file, "run that job again (its training command, with force=true), or leave its "
                        "folder out") if metrics_file.is_file() else pd.DataFrame()
        if len(df):
            df["run_id"] = run_id
            frames.append(df)
            ident = df.iloc[0][[c for c in df.columns if c not in ("step", "split", "metric", "value")]].to_dict()
        else:
            ident = {}
        infos.append({"run_id": run_id, **ident, **{k: info.get(k) for k in (
            "status", "steps_done", "max_steps", "diverged_at_step", "final_test_acc", "best_test_acc",
            "wall_time_s", "probe_unit", "data", "data_official", "git_commit", "git_dirty", "torch", "device",
            "threads", "cpu")}})
    metrics = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(metrics):
        check_schema(metrics)
    return metrics, pd.DataFrame(infos)


def compact(metrics: pd.DataFrame) -> pd.DataFrame:
    """Smaller dtypes for the committed table: the same values a figure needs, a third of the bytes."""
    out = metrics.copy()
    out["value"] = out["value"].astype(np.float32)
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].astype("category")
    return out


def first_step_reaching(test_acc: pd.DataFrame, threshold: float) -> float:
    hit = test_acc.loc[test_acc["value"] >= threshold, "step"]
    return float(hit.iloc[0]) if len(hit) else np.nan


def summarize(metrics: pd.DataFrame, runs: pd.DataFrame, thresholds=THRESHOLDS, on: str = "test",
              smooth: int = 1) -> pd.DataFrame:
    """Per run: final training loss; for classifiers, final and best test accuracy, final training accuracy, and
    the first step at which the accuracy on `on` ("test" or "train"; train smoothed over `smooth` stored points)
    reaches each threshold; for runs with step probes (ICS, landscape), their summaries (probe_summary)."""
    rows = []
    info = runs.set_index("run_id")
    keys = RUN_KEYS + [k for k in SETTINGS if k in metrics and metrics[k].nunique() > 1]
    metrics = metrics.sort_values("step")
    for run_id, g in metrics.groupby("run_id", sort=False, observed=True):
        row = {k: g.iloc[0][k] for k in keys}
        row.update(status=info.loc[run_id, "status"], steps=int(g["step"].max()))
        loss = g[(g["split"] == "train") & (g["metric"] == "loss")]
        if len(loss):
            row["final_train_loss"] = float(loss["value"].iloc[-max(1, smooth):].mean())
        acc = g[g["metric"] == "acc"]
        test, train = acc[acc["split"] == "test"], acc[acc["split"] == "train"]
        if len(test):
            row.update(final_test_acc=float(test["value"].iloc[-1]), best_test_acc=float(test["value"].max()))
            if len(train):
                row["final_train_acc"] = float(train["value"].iloc[-max(1, smooth):].mean())
            curve = test if on == "test" else train.assign(value=train["value"].rolling(smooth, min_periods=1).mean())
            for th in thresholds:
                row[f"step_to_{on}_{int(th * 100)}" if on != "test" else f"step_to_{int(th * 100)}"] = \
                    first_step_reaching(curve, th)
        row.update(probe_summary(g))
        rows.append(row)
    return pd.DataFrame(rows).sort_values(keys, kind="stable").reset_index(drop=True)


def probe_summary(run: pd.DataFrame) -> dict[str, float]:
    """One run's step probes over training: the median of each ICS quantity per layer, and for each landscape
    quantity (loss range, gradient predictiveness, effective beta-smoothness) both its maximum over the probed
    steps (the spikes) and its median (a typical step): the two can disagree."""
    out: dict[str, float] = {}
    probe = run[run["split"] == "probe"]
    names = probe["metric"].astype(str)
    for name, v in probe[names.str.startswith("ics/")].groupby(names, observed=True)["value"]:
        _, layer, stat = name.split("/")
        if stat != "gnorm":
            out[f"ics_{layer}_{stat}_median"] = float(v.median())
    land = {name.removeprefix("landscape/"): v.to_numpy(dtype=float) for name, v in
            probe[names.str.startswith("landscape/")].groupby(names, observed=True)["value"]}
    if land:
        for quantity, values in (("loss_range", land["loss_max"] - land["loss_min"]), ("gpred", land["gpred_max"]),
                                 ("beta", land["beta"])):
            out[f"landscape_{quantity}_max"] = float(np.nanmax(values))
            out[f"landscape_{quantity}_median"] = float(np.nanmedian(values))
    return out


def summarize_variants(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over seeds per variant (and lr)."""
    cols = [c for c in summary.columns
            if c.endswith(("_acc", "_loss", "_median", "_max")) or c.startswith("step_to_")]
    g = summary.groupby(["variant", "lr"], observed=True)
    out = g[cols].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out.insert(0, "seeds", g.size())
    return out.reset_index()


def write_results(roots: list[Path], out_dir: Path, skipped: list[str] | None = None,
                  partial: bool = False, add: bool = False,
                  replace: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the finished runs under `roots` to out_dir; with `add`, beside the runs out_dir already holds (a new
    variant joins reference results without retraining the rest; a run already there is refused, not replaced);
    with `replace`, each in place of the run out_dir holds with the same identity (experiment, variant, lr, seed
    and settings): a run made from a dirty tree, rerun from a clean one."""
    metrics, runs = load_runs(roots, skipped, partial)
    if runs.empty:
        raise FileNotFoundError(f"no finished run under {', '.join(map(str, roots))}: {', '.join(skipped or [])}")
    out_dir = Path(out_dir)
    if add or replace:
        metrics, runs = _beside(out_dir, metrics, runs, replace)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(compact(metrics), out_dir / "metrics.parquet")
    runs.to_csv(out_dir / "runs.csv", index=False)
    keep_diffs(roots, out_dir, set(runs["run_id"]))
    return metrics, runs


def diff_file(out_dir: Path, run_id: str) -> Path:
    """Where a run's code.diff is kept in its results folder (run ids hold '/' and '=': named by their hash)."""
    return Path(out_dir) / DIFFS / f"{hashlib.sha256(run_id.encode()).hexdigest()[:16]}.diff"


def keep_diffs(roots: list[Path], out_dir: Path, run_ids: set[str]) -> None:
    """Each collected run's code.diff (a run from a dirty tree) into out_dir/code_diffs/, its first line naming the
    run; diffs of runs no longer in the results are removed, so a clean rerun leaves no stale diff behind."""
    for run_id, folder in find_runs(roots):
        if run_id in run_ids and (folder / "code.diff").is_file():
            target = diff_file(out_dir, run_id)
            target.parent.mkdir(exist_ok=True)
            target.write_text(f"# run {run_id}\n" + (folder / "code.diff").read_text())
    kept = {diff_file(out_dir, r) for r in run_ids}
    for stale in set((Path(out_dir) / DIFFS).glob("*.diff")) - kept:
        stale.unlink()


def _beside(out_dir: Path, metrics: pd.DataFrame, runs: pd.DataFrame,
            replace: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not (out_dir / "metrics.parquet").is_file() or not (out_dir / "runs.csv").is_file():
        raise FileNotFoundError(f"nothing to add to: {out_dir} has no metrics.parquet and runs.csv")
    old_metrics, old_runs = read_results(out_dir)
    if replace:
        keys = [k for k in (*RUN_KEYS, *SETTINGS) if k in old_runs and k in runs]
        old_keys, new_keys = (frame[keys].astype(str).agg("|".join, axis=1) for frame in (old_runs, runs))
        unmatched = sorted(set(new_keys) - set(old_keys))
        if unmatched or new_keys.duplicated().any():
            raise ValueError(f"{len(unmatched) or 'several'} run(s) to replace match no single run in {out_dir} "
                             f"by {', '.join(keys)}: {(unmatched or list(new_keys[new_keys.duplicated()]))[0]}")
        gone = set(old_runs.loc[old_keys.isin(set(new_keys)), "run_id"])
        old_runs = old_runs[~old_runs["run_id"].isin(gone)]
        old_metrics = old_metrics[~old_metrics["run_id"].isin(gone)]
    clash = sorted(set(old_runs["run_id"]) & set(runs["run_id"]))
    if clash:
        raise ValueError(f"{len(clash)} run(s) already in {out_dir} (collect without --add to replace them): "
                         f"{clash[0]}")
    old_metrics = old_metrics.astype({c: object for c in old_metrics.select_dtypes("category").columns})
    return (pd.concat([old_metrics, metrics], ignore_index=True),
            pd.concat([old_runs, runs], ignore_index=True))
