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
        self._lr = dict(zip(runs["run_id"], runs["lr"].astype(float))) if "lr" in runs else {}
        self._series = {key: g.groupby("step")["value"].last().astype("float64").sort_index()
                        for key, g in metrics.groupby(["run_id", "split", "metric"], observed=True)}

        self.fingerprints = {rid: (int(seed), tuple(np.round(self.series(rid, "train/loss").to_numpy()[:20], 6)))
                             for rid, seed in zip(runs["run_id"], runs["seed"])}
        self._etas: dict[str, list[str]] = {}
        for run_id, split, metric in self._series:
            if split == "probe" and metric.startswith("landscape/eta/") and metric.endswith("/gpred"):
                self._etas.setdefault(run_id, []).append(metric.split("/")[2])

    def metric_names(self) -> set[str]:
        """The names a claim can read here: the stored ones ('test/acc', probes as 'landscape/beta') and those
        computed from them (_derived)."""
        names = {f"{split}/{metric}" for _, split, metric in self._series}
        names |= {metric for _, split, metric in self._series if split == "probe"}  # probes also by their own name
        if "landscape/gnorm" in names:
            names |= {"landscape/loss_range_rel", "landscape/beta_eta"}
            names |= {n.removesuffix("/gpred") + "/rel" for n in names if n.startswith("landscape/eta/")}
        if "landscape/beta" in names:
            names.add("landscape/beta_eos")
        return names

    def fingerprint(self, run_id: str) -> tuple:
        """The same run stored in two results folders has the same seed and training curve."""
        return self.fingerprints.get(run_id, (run_id,))

    def series(self, run_id: str, metric: str, minus: str | None = None, over: str | None = None) -> pd.Series:
        """One run's stored values of `metric` (minus `minus`, or divided by `over`, at the same steps)."""
        s = self._series.get((run_id, *split_metric(metric)), None)
        if s is None:
            s = self._derived(run_id, metric)
        if minus is not None:
            return (s - self.series(run_id, minus)).dropna()
        return s if over is None else (s / self.series(run_id, over)).dropna()


    def _derived(self, run_id: str, metric: str) -> pd.Series:
        """Readings computed from the landscape probe's stored values, so that no verdict hangs on the η grid:
        landscape/eta/<η>/rel = ‖Δg‖ / ‖g‖ at that η, landscape/loss_range_rel = (max − min loss over η) / min,
        and landscape/beta_eta = the η at which the effective β-smoothness (max over η of ‖Δg‖ / (η‖g‖)) is
        attained, and landscape/beta_eos = β / (2/lr), the effective β-smoothness as a multiple of the edge of
        stability (Cohen et al. 2021: along gradient descent's trajectory the sharpness rises to about 2/lr and stays
        there), so that a β set by the learning rate is not read as a property of the network. Anything else: an
        empty series."""
        empty = pd.Series(dtype="float64")
        parts = metric.split("/")
        if metric == "landscape/beta_eos":
            beta, lr = self._series.get((run_id, "probe", "landscape/beta")), self._lr.get(run_id)
            return empty if beta is None or lr is None else beta * (lr / 2)
        gnorm = self._series.get((run_id, "probe", "landscape/gnorm"))
        if gnorm is None or parts[0] != "landscape":
            return empty
        if metric == "landscape/loss_range_rel":  # the loss's range along the step, relative to its lowest value
            lo, hi = (self._series.get((run_id, "probe", f"landscape/loss_{m}")) for m in ("min", "max"))
            return empty if lo is None or hi is None else ((hi - lo) / lo).dropna()
        if len(parts) == 4 and parts[1] == "eta" and parts[3] == "rel":
            gpred = self._series.get((run_id, "probe", f"landscape/eta/{parts[2]}/gpred"))
            return empty if gpred is None else (gpred / gnorm).dropna()
        if metric == "landscape/beta_eta" and self._etas.get(run_id):
            etas = sorted(self._etas[run_id], key=float)
            ratio = pd.concat({float(e): self._series[(run_id, "probe", f"landscape/eta/{e}/gpred")] / float(e)
                               for e in etas}, axis=1).dropna()
            return ratio.idxmax(axis=1).astype("float64")
        return empty


def reduce_by(s: pd.Series, how: dict) -> float:
    """reduce() with a claims-file reduction, {how: ..., and its options}."""
    return reduce(s, how["how"], **{k: v for k, v in how.items() if k != "how"})


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
    if how == "absmax":
        return float(np.nanmax(np.abs(v)))
    if how == "range":
        return float(np.nanmax(v) - np.nanmin(v))
    if how == "change":
        return float(v[-1] - v[0])
    if how == "drift":  # how far the series ever gets from where it started (Santurkar Fig 8b)
        return float(np.nanmax(np.abs(v - v[0])))
    if how == "step_change":
        moves = np.abs(np.diff(v))
        return float(np.nanmax(moves) if opt.get("stat") == "max" else np.nanmedian(moves)) if len(moves) else np.nan
    raise ClaimsError(f"unknown reduction {how!r}")


def by_seed(stored: Stored, runs: pd.DataFrame, metric: str, how: dict, column: str) -> dict[int, list]:
    """Seed -> (the run's value of `column`, its reduced `metric`) for each run of that seed."""
    return {int(seed): [(float(x), reduce_by(stored.series(run_id, metric), how))
                        for run_id, x in zip(group["run_id"], group[column])]
            for seed, group in runs.groupby("seed")}


def span_across(stored: Stored, runs: pd.DataFrame, metric: str, how: dict, column: str, above: float) -> dict:
    """Seed -> the span, in decades, of the values of `column` (e.g. the learning rate) at which a run's metric,
    reduced as `how`, is at least `above`: log10(largest) − log10(smallest); 0 when one value or none passes."""
    out: dict[int, float] = {}
    for seed, pairs in by_seed(stored, runs, metric, how, column).items():
        passing = [x for x, v in pairs if v >= float(above)]
        out[seed] = float(np.log10(max(passing) / min(passing))) if passing else 0.0
    return out


def best_across(stored: Stored, runs: pd.DataFrame, metric: str, how: dict, column: str) -> dict:
    """Seed -> the largest reduced value of `metric` over the runs of that seed, which differ in `column` (e.g. a
    network at its own best learning rate); runs without a value (diverged before it) are left out."""
    out: dict[int, float] = {}
    for seed, pairs in by_seed(stored, runs, metric, how, column).items():
        values = [v for _, v in pairs if np.isfinite(v)]
        if values and len({x for x, _ in pairs}) == len(pairs):
            out[seed] = float(max(values))
    return out


def spread_across(stored: Stored, runs: pd.DataFrame, metric: str, how: dict, column: str) -> dict:
    """Seed -> the spread, in decades, of a positive metric over the runs of that seed, which differ in `column`:
    log10(largest / smallest) of the reduced values (e.g. the effective learning rates that learning rates two
    decades apart end with); seeds where a run has no positive value are left out."""
    out: dict[int, float] = {}
    for seed, pairs in by_seed(stored, runs, metric, how, column).items():
        values = [v for _, v in pairs]
        if len(values) > 1 and len({x for x, _ in pairs}) == len(pairs) and all(np.isfinite(values)) \
                and min(values) > 0:
            out[seed] = float(np.log10(max(values) / min(values)))
    return out
