"""Judge a claim from stored metrics: reduce each run's series to one number, pair the two sides by seed, test
the statistic per seed, and give a verdict. Nothing here trains; missing data is a verdict ("not run"), not an
error."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bnrepro.metrics import SPLITS
from bnrepro.report.claims import Claim, ClaimsError

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run")


@dataclass
class Outcome:
    claim: Claim
    verdict: str
    reason: str = ""
    a: dict[int, float] = field(default_factory=dict)   # seed -> the reduced value of side A
    b: dict[int, float] = field(default_factory=dict)
    stats: dict[int, float] = field(default_factory=dict)  # seed -> the tested statistic

    @property
    def n(self) -> int:
        return len(self.stats)


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

    def series(self, run_id: str, metric: str, minus: str | None = None) -> pd.Series:
        """One run's stored values of `metric` (minus `minus` at the same steps), indexed by step."""
        s = self._series.get((run_id, *split_metric(metric)), pd.Series(dtype="float64"))
        return s if minus is None else (s - self.series(run_id, minus)).dropna()


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


def side_series(claim: Claim, stored: Stored, side: dict) -> dict[int, pd.Series]:
    """Seed -> the series the claim reduces, for the runs of one side that recorded it; raises ClaimsError when a
    seed matches several runs."""
    chosen = select_runs(stored.runs, {**claim.runs, **side})
    if chosen["seed"].duplicated().any():
        raise ClaimsError(f"claim {claim.id!r}: {len(chosen)} runs match {{{_where(claim.runs, side)}}}, several "
                          f"per seed; narrow its runs/a/b selection")
    found = {int(seed): stored.series(run_id, claim.metric, claim.minus)
             for run_id, seed in zip(chosen["run_id"], chosen["seed"])}
    return {seed: s for seed, s in found.items() if not s.empty}


def side_values(claim: Claim, stored: Stored, side: dict) -> dict[int, float]:
    """Seed -> reduced value for the runs of one side."""
    opt = {k: v for k, v in claim.reduce.items() if k != "how"}
    return {seed: reduce(s, claim.reduce["how"], **opt) for seed, s in side_series(claim, stored, side).items()}


def _where(*dicts: dict) -> str:
    return ", ".join(f"{k}={v}" for d in dicts for k, v in d.items())


def statistic(stat: str, a: float, b: float | None) -> float:
    if stat == "value":
        return a
    if stat == "difference":
        return a - b if not (np.isinf(a) and np.isinf(b)) else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.isinf(a) and np.isinf(b):
            return np.nan  # neither got there: no ratio to speak of
        return float(np.float64(a) / np.float64(b))


def spread(stat: str, values: list[float]) -> tuple[float, float] | None:
    """The band mean ± sd over seeds (geometric for ratios, which are multiplicative); None if not all finite."""
    v = np.asarray(values, dtype=float)
    if not np.isfinite(v).all():
        return None
    sd_of = (lambda x: float(np.std(x, ddof=1)) if len(x) > 1 else 0.0)
    if stat == "ratio" and (v > 0).all():
        m, sd = float(np.mean(np.log(v))), sd_of(np.log(v))
        return float(np.exp(m - sd)), float(np.exp(m + sd))
    m, sd = float(np.mean(v)), sd_of(v)
    return m - sd, m + sd


def judge(claim: Claim, stored: Stored | None) -> Outcome:
    if stored is None:
        return Outcome(claim, "not run", f"no stored results in results/{claim.figure.results}/")
    a = side_values(claim, stored, claim.a)
    b = side_values(claim, stored, claim.b) if claim.b is not None else {}
    missing = [_where(claim.runs, side) for side, got in ((claim.a, a), (claim.b, b)) if side is not None and not got]
    if missing:
        return Outcome(claim, "not run", f"no run with {claim.metric} for {{{'}, {'.join(missing)}}}", a, b)
    seeds = sorted(set(a) & set(b)) if claim.b is not None else sorted(a)
    if not seeds:
        return Outcome(claim, "not run", "the two sides share no seed", a, b)
    stats = {s: statistic(claim.test.stat, a[s], b.get(s)) for s in seeds}
    passed = [claim.test.passes(v) for v in stats.values()]
    out = Outcome(claim, "inconclusive", "", {s: a[s] for s in seeds}, {s: b[s] for s in seeds if s in b}, stats)
    if len(seeds) < claim.seeds:
        out.reason = f"{len(seeds)} seed(s), {claim.seeds} required"
        return out
    if any(passed) and not all(passed):
        out.reason = f"seeds disagree: {sum(passed)} of {len(passed)} pass" + _no_value(stats)
        return out
    band = spread(claim.test.stat, list(stats.values()))
    lo, hi = claim.test.lo, claim.test.hi
    if band is not None:
        inside = lo <= band[0] and band[1] <= hi
        outside = band[1] < lo or band[0] > hi
        if (all(passed) and not inside) or (not any(passed) and not outside):
            out.reason = "the spread over seeds (mean ± sd) overlaps the threshold"
            return out
    out.verdict = "reproduced" if all(passed) else "not reproduced"
    out.reason = _no_value(stats).removeprefix("; ")
    return out


def _no_value(stats: dict[int, float]) -> str:
    n = sum(np.isnan(v) for v in stats.values())
    return f"; no value in {n} seed(s): the run did not get there, or neither side reached the threshold" if n else ""


def claim_series(claim: Claim, stored: Stored) -> pd.DataFrame:
    """The series a claim reduces, both sides, long form (side, seed, step, value): what a notebook plots."""
    frames = [pd.DataFrame({"side": f"{name}: {_where(side)}", "seed": seed, "step": s.index, "value": s.to_numpy()})
              for name, side in (("A", claim.a), ("B", claim.b)) if side is not None
              for seed, s in side_series(claim, stored, side).items()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["side", "seed", "step", "value"])
