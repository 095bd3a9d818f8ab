"""Searches for the settings a paper leaves unstated, scored by the distance to values read off its figures.

A search (configs/search/<name>.yaml) is a grid of runs of one experiment and a list of targets. Each target picks
runs by config values (`where`), a metric and a step (or a span of steps, averaged), and compares it with the
paper's value: the error is (ours - paper) / tol (with `bound: upper`, only above the paper's value counts), or,
on a log scale, log(ours / paper) / log(1 + tol). A candidate is one setting of the grid's keys other than those
`where` selects by; its score is the root mean square of its targets' errors (lower is closer; a missing or
non-finite value scores inf). Everything is computed from the runs' stored metrics, so rescoring never retrains.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bnrepro.collect import find_runs
from bnrepro.config.stored import load_stored


def run_settings(roots: list[Path], keys: list[str], run_ids) -> pd.DataFrame:
    """run_id and the value of each config key (dotted) of these runs (collect.load_runs's ids) under roots."""
    folders = dict(find_runs(roots))
    rows = []
    for run_id in run_ids:
        cfg = load_stored(folders[run_id] / "config_resolved.yaml")
        rows.append({"run_id": run_id, **{k: OmegaConf.select(cfg, k) for k in keys}})
    return pd.DataFrame(rows)


def target_value(metrics: pd.DataFrame, run_ids: list[str], target: DictConfig) -> float:
    """The target's metric for these runs (their mean: seeds), at its step: a number, 'first', 'last', or
    [start, stop] for the mean over that span."""
    split, _, name = str(target.metric).partition("/")
    rows = metrics[metrics.run_id.isin(run_ids) & (metrics.split == split) & (metrics.metric == name)]
    if rows.empty:
        return math.nan
    step = target.step
    per_run = []
    for _, r in rows.groupby("run_id"):
        if step == "first":
            r = r[r.step == r.step.min()]
        elif step == "last":
            r = r[r.step == r.step.max()]
        elif isinstance(step, (int, float)):
            r = r[r.step == step]
        else:
            r = r[(r.step >= step[0]) & (r.step <= step[1])]
        per_run.append(r.value.mean() if len(r) else math.nan)
    return float(np.mean(per_run))


def error(ours: float, target: DictConfig) -> float:
    if not math.isfinite(ours) or (target.scale == "log" and ours <= 0):
        return math.inf
    if target.scale == "log":
        return math.log(ours / target.paper) / math.log(1 + target.tol)
    if target.get("bound") == "upper":  # the paper only shows the value below this
        return max(0.0, ours - target.paper) / target.tol
    return (ours - target.paper) / target.tol


def score(metrics: pd.DataFrame, settings: pd.DataFrame, search: DictConfig) -> pd.DataFrame:
    """One row per candidate: its grid values, each target's value and error, and the score; best first."""
    selectors = sorted({k for t in search.targets for k in (t.get("where") or {})})
    keys = [k for k in search.grid if k not in selectors]
    rows = []
    for values, group in settings.groupby(keys, dropna=False) if keys else [((), settings)]:
        values = values if isinstance(values, tuple) else (values,)
        row = dict(zip(keys, values))
        errors = []
        for t in search.targets:
            chosen = group
            for k, v in (t.get("where") or {}).items():
                chosen = chosen[chosen[k].astype(str) == str(v)]
            ours = target_value(metrics, list(chosen.run_id), t)
            row[t.name], row[f"{t.name} error"] = ours, error(ours, t)
            errors.append(row[f"{t.name} error"] * t.get("weight", 1.0))
        row["score"] = math.sqrt(sum(e * e for e in errors) / len(errors))
        row["runs"] = len(group)
        rows.append(row)
    return pd.DataFrame(rows).sort_values("score", kind="stable").reset_index(drop=True)


def markdown(scores: pd.DataFrame, search: DictConfig) -> str:
    """The ranked table, with the paper's values as its first row."""
    keys = [c for c in scores.columns if c in search.grid]
    names = [t.name for t in search.targets]
    head = keys + names + ["score"]
    lines = [f"# Search: {search.name}", "", str(search.description).strip(), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             "| paper | " + " | ".join([""] * (len(keys) - 1) + [_fmt(t.paper) for t in search.targets]) + " | |"]
    for _, r in scores.iterrows():
        lines.append("| " + " | ".join([_fmt(r[k]) for k in keys] + [f"{_fmt(r[n])} ({r[n + ' error']:+.1f})"
                                                                     for n in names] + [_fmt(r.score)]) + " |")
    lines += ["", "Each target's value is followed by its error in tolerances: " + "; ".join(
        f"{t.name}: {'log ratio / log(1 + ' + str(t.tol) + ')' if t.scale == 'log' else '/ ' + str(t.tol)}"
        for t in search.targets) + ". The score is their root mean square."]
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
