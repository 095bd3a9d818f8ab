"""Judge a claim row from stored metrics: check its preconditions, reduce each run's series to one number, pair
the two sides by seed, and decide by the 95% interval of the statistic's mean over seeds. Nothing here trains;
missing data is a verdict ("not run"), not an error."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bnrepro.report.schema import Claim, ClaimsError
from bnrepro.report.series import Stored, best_across, reduce_by, select_runs, span_across, spread_across
from bnrepro.report.stats import interval, p_value, spearman_interval, spearman_p

RESULTS = ("pass", "fail", "inconclusive", "not testable", "not run")
# What a pass and a fail mean, per kind of row: only paper values and directions reproduce a claim.
LABELS = {
    "paper_value": ("reproduced", "not reproduced"), "direction": ("reproduced", "not reproduced"),
    "control": ("supports the claim", "undercuts the claim"),
    "sanity": ("holds, as it must", "fails: check the code"),
    "fitted": ("matches (fitted)", "does not match (fitted)"),
}
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not testable", "not run")
# A run that never reached its threshold is read at its last step, and again as if it had needed this many times
# as many steps: a row decided by such a bound is decided only when both readings decide it the same way.
CENSORED_FAR = 10


def on_log_scale(stat: str, values) -> bool:
    """Whether a row's interval is computed on the log scale: a ratio (multiplicative) whose values are all
    positive."""
    return stat == "ratio" and all(v > 0 for v in values)


@dataclass
class Outcome:
    claim: Claim
    result: str                 # one of RESULTS
    reason: str = ""
    a: dict[int, float] = field(default_factory=dict)   # seed -> the reduced value of side A
    b: dict[int, float] = field(default_factory=dict)
    stats: dict[int, float] = field(default_factory=dict)  # seed -> the tested statistic
    estimate: tuple[float, float, float] | None = None   # mean (geometric for ratios) and its 95% interval
    left_out: dict[int, str] = field(default_factory=dict)  # seed -> why it has no value
    runs: frozenset = frozenset()  # fingerprints of the runs read (see Stored.fingerprint)
    censored: int = 0   # seeds whose statistic is a bound (one side never reached its threshold)
    censored_sign: int = 0  # +1: those bounds are lower bounds (A never got there), -1: upper bounds
    p: float = float("nan")  # the p-value of the decision (see decision_p), NaN when undecided

    @property
    def bound(self) -> int:
        """+1 (-1) when every seed's statistic is a lower (upper) bound: the effect is a bound, not a value."""
        return self.censored_sign if self.censored and self.censored == self.n else 0

    @property
    def n(self) -> int:
        return len(self.stats)

    @property
    def log(self) -> bool:
        """Whether its interval was computed on the log scale (a Spearman row's never is)."""
        return self.claim.x is None and on_log_scale(self.claim.test.stat, self.stats.values())

    @property
    def verdict(self) -> str:
        """The row's verdict in the words of its kind: reproduced / not reproduced only for rows that count, and
        holds / fails for an extension's (a statement none of the sources makes)."""
        if self.result in ("pass", "fail"):
            if self.claim.extension and self.claim.counts:
                return ("holds", "fails")[self.result == "fail"] + " (extension)"
            return LABELS[self.claim.kind][self.result == "fail"]
        return self.result


def side_series(claim: Claim, stored: Stored, side: dict) -> dict[int, pd.Series]:
    """Seed -> the series the claim reduces, for the runs of one side that recorded it; raises ClaimsError when a
    seed matches several runs."""
    chosen = select_runs(stored.runs, {**claim.runs, **side})
    if chosen["seed"].duplicated().any():
        raise ClaimsError(f"claim {claim.id!r}: {len(chosen)} runs match {{{_where(claim.runs, side)}}}, several "
                          f"per seed; narrow its runs/a/b selection")
    found = {int(seed): stored.series(run_id, claim.metric, claim.minus, claim.over)
             for run_id, seed in zip(chosen["run_id"], chosen["seed"])}
    return {seed: s for seed, s in found.items() if not s.empty}


def over_runs(claim: Claim, stored: Stored, side: dict) -> dict[int, float]:
    """A side's value per seed read across its runs rather than from one run: the span of a run column where the
    metric passes (across), its best run (best_over), or the spread of its runs' values (spread_over)."""
    runs = select_runs(stored.runs, {**claim.runs, **side})
    if claim.across is not None:
        return span_across(stored, runs, claim.metric, claim.reduce, **claim.across)
    if claim.best_over is not None:
        return best_across(stored, runs, claim.metric, claim.reduce, claim.best_over)
    return spread_across(stored, runs, claim.metric, claim.reduce, claim.spread_over)


def _where(*dicts: dict) -> str:
    return ", ".join(f"{k}={v}" for d in dicts for k, v in d.items())


def statistic(stat: str, a: float, b: float | None) -> float:
    if stat == "value":
        return a
    if stat == "difference":
        return a - b
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))


def censored_statistic(stat: str, a: float, b: float | None, ha: float, hb: float) -> tuple[float, int]:
    """The statistic with a side that never reached its threshold (steps_to = ∞) put at its run's last step,
    and which way that makes it a bound: +1 when the true statistic is at least the value (A censored: A is
    larger still), -1 when at most (B censored), 0 when exact. Both censored: no value (NaN)."""
    ca, cb = bool(np.isinf(a)), b is not None and bool(np.isinf(b))
    if ca and cb:
        return np.nan, 0
    a2, b2 = (ha if ca else a), (hb if cb else b)
    return statistic(stat, a2, b2), (1 if ca else -1 if cb else 0)


def _decide(test, est: tuple[float, float, float], bounds: set[int]) -> tuple[str, str]:
    """pass / fail / inconclusive from the 95% interval of the statistic against the test's range."""
    _, lo, hi = est
    passes, fails = test.lo <= lo and hi <= test.hi, hi < test.lo or lo > test.hi
    if not (passes or fails):
        return "inconclusive", "the 95% interval over seeds overlaps the threshold"
    if bounds - {0}:
        one_sided_up, one_sided_down = test.hi == np.inf, test.lo == -np.inf
        valid = bounds - {0} == {1} and ((passes and one_sided_up) or (fails and one_sided_down)) or \
            bounds - {0} == {-1} and ((passes and one_sided_down) or (fails and one_sided_up))
        if not valid:
            return "inconclusive", ("some runs never reached the threshold, and with their value put at the last "
                                    "step the interval could move across it")
        return ("pass" if passes else "fail"), "some runs never reached the threshold: their value is a bound, " \
                                               "and the bound already decides"
    return ("pass" if passes else "fail"), ""


def _mean(values: dict[int, float]) -> float:
    v = [x for x in values.values() if np.isfinite(x)]
    return float(np.mean(v)) if v else np.nan


def judge(claim: Claim, stored: Stored | None) -> Outcome:
    if stored is None:
        return Outcome(claim, "not run", f"no stored results in results/{claim.figure.results}/")
    if claim.x is not None:
        return correlate(claim, stored)
    if claim.across is not None or claim.best_over is not None or claim.spread_over is not None:
        a_series, b_series = {}, {}
        a, b = ({} if side is None else over_runs(claim, stored, side) for side in (claim.a, claim.b))
    else:
        a_series = side_series(claim, stored, claim.a)
        b_series = side_series(claim, stored, claim.b) if claim.b is not None else {}
        a = {s: reduce_by(x, claim.reduce) for s, x in a_series.items()}
        b = {s: reduce_by(x, claim.reduce) for s, x in b_series.items()}
    if claim.baseline is not None:  # A − B against the same contrast A′ − B′ without the effect, seed by seed
        base = [{s: reduce_by(x, claim.reduce) for s, x in side_series(claim, stored, side).items()}
                for side in (claim.baseline["a"], claim.baseline["b"])]
        common = set(a) & set(b) & set(base[0]) & set(base[1])
        a, b = {s: a[s] - b[s] for s in common}, {s: base[0][s] - base[1][s] for s in common}
    missing = [_where(claim.runs, side) for side, got in ((claim.a, a), (claim.b, b)) if side is not None and not got]
    if missing:
        return Outcome(claim, "not run", f"no run with {claim.metric} for {{{'}, {'.join(missing)}}}", a, b)
    seeds = sorted(set(a) & set(b)) if claim.b is not None else sorted(a)
    if not seeds:
        return Outcome(claim, "not run", "the two sides share no seed", a, b)
    out = Outcome(claim, "inconclusive", "", {s: a[s] for s in seeds}, {s: b[s] for s in seeds if s in b})
    sides = [side for side in (claim.a, claim.b, *(claim.baseline or {}).values()) if side is not None]
    used = pd.concat([select_runs(stored.runs, {**claim.runs, **side}) for side in sides])
    out.runs = frozenset(stored.fingerprint(r) for r, seed in zip(used["run_id"], used["seed"]) if seed in out.a)
    for s in sorted({int(x) for x in used["seed"]} - set(seeds)):
        out.left_out[s] = "no value on one side"  # e.g. a run that diverged before its first probe
    for req in claim.requires:  # on every side the row reads, the baseline's included
        for side in sides:
            got = _mean(side_values_of(claim, stored, side, req.metric, req.reduce))
            if np.isnan(got):
                out.result = "not run"
                out.reason = f"no {req.metric} stored for {_where(side)}, to check the precondition"
                return out
            if not (req.lo <= got <= req.hi):
                out.result = "not testable"
                out.reason = f"needs {req.describe()}; {_where(side)} has {got:.3g}"
                return out
    horizon = {s: float(x.index.max()) for s, x in a_series.items()}
    horizon_b = {s: float(x.index.max()) for s, x in b_series.items()}
    far: dict[int, float] = {}  # the statistic with censored runs at CENSORED_FAR × their last step
    bounds: set[int] = set()
    for s in seeds:
        v, bound = censored_statistic(claim.test.stat, a[s], b.get(s), horizon.get(s, np.nan),
                                      horizon_b.get(s, np.nan))
        if np.isnan(v):
            out.left_out[s] = "neither side reached the threshold" if bound == 0 and np.isinf(a[s]) \
                else "no value (the run diverged or did not get there)"
            continue
        out.stats[s] = v
        bounds.add(bound)
        if bound:
            out.censored += 1
            out.censored_sign = bound if out.censored == 1 or out.censored_sign == bound else 0
        far[s] = censored_statistic(claim.test.stat, a[s], b.get(s), CENSORED_FAR * horizon.get(s, np.nan),
                                    CENSORED_FAR * horizon_b.get(s, np.nan))[0]
    diverged = _diverged(stored, claim)
    for s in list(out.left_out):
        if s in diverged:
            out.left_out[s] = f"diverged at step {diverged[s]}"
    if out.n < claim.seeds:
        out.reason = f"{out.n} seed(s) with a value, {claim.seeds} required"
        return out
    values = list(out.stats.values())
    log = on_log_scale(claim.test.stat, values)
    out.estimate = interval(values, log=log)
    out.result, out.reason = _decide(claim.test, out.estimate, bounds)
    if out.result in ("pass", "fail") and out.censored:
        moved = list(far.values())
        far_result, _ = _decide(claim.test, interval(moved, log=on_log_scale(claim.test.stat, moved)), set())
        if far_result != out.result:
            out.reason = (f"{out.censored} run(s) never reached the threshold: read at their last step the row "
                          f"{'passes' if out.result == 'pass' else 'fails'}, but not if they had needed "
                          f"{CENSORED_FAR}× as many steps, so the bound does not decide")
            out.result = "inconclusive"
    if out.result in ("pass", "fail"):
        out.p = decision_p(claim.test, out.result, out.estimate, lambda t: p_value(values, t, log))
    return out


def decision_p(test, result: str, est: tuple[float, float, float], p_at) -> float:
    """The p-value behind a decision: for a pass, the largest over the thresholds the interval must clear (each
    excluded at 95% exactly when its p < 0.05); for a fail, that of the threshold the interval lies beyond."""
    if result == "pass":
        return max(p_at(t) for t in (test.lo, test.hi) if np.isfinite(t))
    return p_at(test.lo if est[2] < test.lo else test.hi)


def correlate(claim: Claim, stored: Stored) -> Outcome:
    """A row over runs, not seeds: Spearman's correlation, across every run side `a` selects (all its variants and
    seeds), between the row's metric and `x`'s, each reduced per run."""
    chosen = select_runs(stored.runs, {**claim.runs, **claim.a})
    pairs = {}
    for run_id in chosen["run_id"]:
        xv = reduce_by(stored.series(run_id, claim.x["metric"]), claim.x["reduce"])
        yv = reduce_by(stored.series(run_id, claim.metric, claim.minus, claim.over), claim.reduce)
        if np.isfinite(xv) and np.isfinite(yv):
            pairs[run_id] = (xv, yv)
    out = Outcome(claim, "inconclusive", "", {i: v[1] for i, v in enumerate(pairs.values())})
    out.runs = frozenset(stored.fingerprint(r) for r in pairs)
    missing = len(set(chosen["run_id"]) - set(pairs))  # e.g. runs that diverged before their first probe
    left = f"; {missing} run(s) without both values left out" if missing else ""
    if len(pairs) < max(claim.seeds, 4):
        out.reason = f"{len(pairs)} runs with both values, {max(claim.seeds, 4)} required{left}"
        return out
    xs, ys = np.array([v[0] for v in pairs.values()]), np.array([v[1] for v in pairs.values()])
    out.estimate = spearman_interval(xs, ys)
    out.stats = dict(enumerate(ys))
    out.result, out.reason = _decide(claim.test, out.estimate, set())
    out.reason = f"Spearman's ρ over {len(pairs)} runs{left}" + (f"; {out.reason}" if out.reason else "")
    if out.result in ("pass", "fail"):
        out.p = decision_p(claim.test, out.result, out.estimate,
                           lambda t: spearman_p(out.estimate[0], len(pairs), t))
    return out


def side_values_of(claim: Claim, stored: Stored, side: dict, metric: str, how: dict) -> dict[int, float]:
    chosen = select_runs(stored.runs, {**claim.runs, **side})
    return {int(seed): reduce_by(stored.series(run_id, metric), how)
            for run_id, seed in zip(chosen["run_id"], chosen["seed"])}


def _diverged(stored: Stored, claim: Claim) -> dict[int, int]:
    runs = stored.runs
    if "status" not in runs:
        return {}
    out = {}
    for side in (claim.a, claim.b):
        if side is None:
            continue
        chosen = select_runs(runs, {**claim.runs, **side})
        for _, r in chosen[chosen["status"] == "diverged"].iterrows():
            step = r.get("diverged_at_step")
            out[int(r["seed"])] = int(step) if pd.notna(step) else -1
    return out



def claim_series(claim: Claim, stored: Stored) -> pd.DataFrame:
    """The series a claim reduces, both sides, long form (side, seed, step, value): what a notebook plots."""
    frames = [pd.DataFrame({"side": f"{name}: {_where(side)}", "seed": seed, "step": s.index, "value": s.to_numpy()})
              for name, side in (("A", claim.a), ("B", claim.b)) if side is not None
              for seed, s in side_series(claim, stored, side).items()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["side", "seed", "step", "value"])
