"""One row of the report in words: numbers to a fixed number of digits, each side's values over seeds, the effect
with its interval, the test and the verdict with its reason."""

from __future__ import annotations

from collections import Counter

import numpy as np

from bnrepro.labels import label
from bnrepro.report.evaluate import Outcome
from bnrepro.report.schema import Claim


def fmt(x: float, never: bool = False) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    if np.isinf(x):
        return "never" if never and x > 0 else ("∞" if x > 0 else "−∞")
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        mantissa, exp = f"{x:.2e}".split("e")
        return f"{mantissa}e{int(exp)}"
    if abs(x) >= 1000:
        return f"{float(f'{x:.3g}'):,.0f}"  # 3 significant digits, with a thousands separator: 2,040
    return f"{x:.3g}"


def mean_sd(values: list[float], never: bool) -> str:
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return "n/a"
    finite = v[np.isfinite(v)]
    if len(finite) < len(v):  # "never" (or NaN) in some seeds: say how many, and the rest as they are
        odd = Counter(fmt(x, never) for x in v[~np.isfinite(v)])
        parts = [f"{k} ×{n}" for k, n in sorted(odd.items())] + [fmt(x, never) for x in finite]
        return ", ".join(parts)
    if len(v) == 1:
        return fmt(float(v[0]))
    return f"{fmt(float(v.mean()))} ± {fmt(float(v.std(ddof=1)))}"


def side_label(claim: Claim, side: dict) -> str:
    parts = [label(str(v)) if k == "variant" else f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
             for k, v in side.items()]
    return ", ".join(parts) or "runs"


def effect(o: Outcome) -> str:
    """The tested statistic as an effect with its 95% interval over seeds; a bound ("≥ 2.49") when every seed's
    value is one (a side that never reached its threshold, read at its last step)."""
    stat = "ρ " if o.claim.x else {"value": "", "ratio": "ratio ", "difference": "difference "}[o.claim.test.stat]
    if o.estimate is None:
        return f"{stat}{mean_sd(list(o.stats.values()), o.claim.reduce['how'] == 'steps_to')}"
    est, lo, hi = o.estimate
    if o.bound:
        return f"{stat}{'≥' if o.bound > 0 else '≤'} {fmt(est)} [{fmt(lo)}, {fmt(hi)}] (a bound: every seed censored)"
    return f"{stat}{fmt(est)} [{fmt(lo)}, {fmt(hi)}]"


def ours(o: Outcome) -> str:
    if o.result == "not run":
        return "—"
    c = o.claim
    never = c.reduce["how"] == "steps_to"
    seeds = list(o.a)
    a = mean_sd([o.a[s] for s in seeds], never)
    left = f"; left out: {', '.join(f'seed {s} ({why})' for s, why in sorted(o.left_out.items()))}" \
        if o.left_out else ""
    if c.x is not None:
        return f"{effect(o)} over {o.n} runs{left}"
    if c.b is None:
        return f"{a} → {effect(o)} (n={o.n}{left})"
    b = mean_sd([o.b[s] for s in seeds if s in o.b], never)
    la, lb = side_label(c, c.a), side_label(c, c.b)
    if c.baseline is not None:  # the sides are contrasts: the effect's and the same contrast without it
        la, lb = f"({la}) − ({lb})", f"({side_label(c, c.baseline['a'])}) − ({side_label(c, c.baseline['b'])})"
    return f"{la}: {a} · {lb}: {b} · {effect(o)} (n={o.n}{left})"


def test_text(c: Claim) -> str:
    if c.x is not None:
        return c.test.describe("ρ", None)
    t = c.test.describe(side_label(c, c.a), side_label(c, c.b) if c.b is not None else None)
    return f"{t} (sign only: no margin)" if c.sign_only else t


def verdict_text(o: Outcome) -> str:
    v = f"**{o.verdict}**" if o.result == "fail" else o.verdict
    reason = f"{o.reason}; run `{o.claim.command}`" if o.result == "not run" else o.reason
    return f"{v} ({reason})" if reason else v


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
