"""Stored metrics, run by run: one results folder's series indexed for lookups, the runs a side selects, and the
reductions that turn a run's series into one number (configs/claims.yaml lists them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bnrepro.metrics import SPLITS
from bnrepro.report.schema import ClaimsError


def split_metric(metric: str) -> tuple[str, str]:
    """'test/acc' -> ('test', 'acc'); names without a split prefix are probes: 'landscape/beta' -> ('probe', ...)."""
    head, _, rest = metric.partition("/")
    return (head, rest) if head in SPLITS and rest else ("probe", metric)


def select_runs(runs: pd.DataFrame, where: dict) -> pd.DataFrame:
    """Rows of runs.csv matching every column: value of `where` (floats compared with a relative tolerance)."""
    keep = pd.Series(True, index=runs.index)
    for col, want in where.items():
        if col not in runs:
            raise ClaimsError(f"runs have no column {col!r} (columns: {sorted(runs.columns)})")
        values = runs[col]
        if isinstance(want, (int, float)) and not isinstance(want, bool) and pd.api.types.is_numeric_dtype(values):
            keep &= np.isclose(values.astype(float), float(want), rtol=1e-9, atol=0)
        else:
            keep &= values.astype(str) == str(want)
    return runs[keep]


class Stored:
    """One results folder's metrics.parquet and runs.csv, with each run's series indexed for repeated lookups."""

    def __init__(self, metrics: pd.DataFrame, runs: pd.DataFrame):
        self.runs = runs
        self._series = {key: g.groupby("step")["value"].last().astype("float64").sort_index()
                        for key, g in metrics.groupby(["run_id", "split", "metric"], observed=True)}

        curves = self._series
        self.fingerprints = {rid: (int(seed), tuple(np.round(curves.get((rid, "train", "loss"), pd.Series(dtype=float))
                                                              .to_numpy()[:20], 6)))
                             for rid, seed in zip(runs["run_id"], runs["seed"])}

    def fingerprint(self, run_id: str) -> tuple:
        """The same run stored in two results folders has the same seed and training curve."""
        return self.fingerprints.get(run_id, (run_id,))

    def series(self, run_id: str, metric: str, minus: str | None = None, over: str | None = None) -> pd.Series:
        """One run's stored values of `metric` (minus `minus`, or divided by `over`, at the same steps)."""
        s = self._series.get((run_id, *split_metric(metric)), pd.Series(dtype="float64"))
        if minus is not None:
            return (s - self.series(run_id, minus)).dropna()
        return s if over is None else (s / self.series(run_id, over)).dropna()


def reduce(s: pd.Series, how: str, **opt) -> float:
    """One run's series (values indexed by step) to one number; see configs/claims.yaml for the readings."""
    if "from" in opt or "to" in opt:
        s = s[(s.index >= opt.get("from", -np.inf)) & (s.index <= opt.get("to", np.inf))]
    if s.empty:
        return np.nan
    v = s.to_numpy()
    window = int(opt.get("window", 1))
    if how == "final":
        return float(np.mean(v[-window:]))
    if how == "at_step":
        upto = s[s.index <= opt["step"]]
        if s.index.max() < opt["step"] or upto.empty:
            return np.nan  # the run did not get there
        return float(np.mean(upto.to_numpy()[-window:]))
    if how == "steps_to":
        curve = s.rolling(int(opt.get("smooth", 1)), min_periods=1).mean()
        hit = curve[curve <= opt["threshold"]] if opt.get("below") else curve[curve >= opt["threshold"]]
        return float(hit.index[0]) if len(hit) else np.inf  # never reached: infinitely many steps
    if np.isnan(v).all():
        return np.nan
    if how in ("max", "min", "median", "mean"):
        return float(getattr(np, f"nan{how}")(v))
    if how == "range":
        return float(np.nanmax(v) - np.nanmin(v))
    if how == "change":
        return float(v[-1] - v[0])
    if how == "step_change":
        moves = np.abs(np.diff(v))
        return float(np.nanmax(moves) if opt.get("stat") == "max" else np.nanmedian(moves)) if len(moves) else np.nan
    raise ClaimsError(f"unknown reduction {how!r}")
