"""The interval a verdict rests on: a 95% confidence interval for the mean of a per-seed statistic, by Student's t
(on the log scale for ratios, which are multiplicative), Spearman's rank correlation with its interval, the p-value
of a threshold the interval excludes, and the corrections over a family of such p-values (Benjamini-Hochberg's, which
the report applies, and Holm's, which it counts)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95


def resolution(n: int) -> float:
    """The smallest mean effect, in units of the seed-to-seed sd, whose 95% interval excludes zero with n seeds."""
    return float(stats.t.ppf(1 - (1 - LEVEL) / 2, n - 1)) / math.sqrt(n) if n > 1 else math.inf


def interval(values, log: bool = False) -> tuple[float, float, float]:
    """(estimate, low, high): the mean of the values and its 95% interval; for log=True the geometric mean and
    the interval of the log values, mapped back. One value gives an unbounded interval: one seed says nothing
    about the spread."""
    v = np.asarray(values, dtype=float)
    if log:
        v = np.log(v)
    m = float(v.mean())
    if len(v) < 2:
        lo, hi = -math.inf, math.inf
    else:
        half = resolution(len(v)) * float(v.std(ddof=1))
        lo, hi = m - half, m + half
    return (math.exp(m), math.exp(lo), math.exp(hi)) if log else (m, lo, hi)


def spearman_interval(x, y) -> tuple[float, float, float]:
    """Spearman's rank correlation of paired values (tied values share their mean rank) and its 95% interval
    (Fisher's z, standard error 1/sqrt(n - 3)); 0 where either side is constant, and fewer than 4 pairs give an
    unbounded interval."""
    x, y = pd.Series(np.asarray(x, dtype=float)), pd.Series(np.asarray(y, dtype=float))
    rho = float(x.corr(y, method="spearman")) if x.nunique() > 1 and y.nunique() > 1 else 0.0
    if len(x) < 4:
        return rho, -1.0, 1.0
    z = math.atanh(max(min(rho, 0.999999), -0.999999))
    half = float(stats.norm.ppf(1 - (1 - LEVEL) / 2)) / math.sqrt(len(x) - 3)
    return rho, math.tanh(z - half), math.tanh(z + half)


def p_value(values, threshold: float, log: bool = False) -> float:
    """Two-sided p-value of Student's t test that the mean of the values (of their logs for log=True) equals the
    threshold: the 95% interval excludes the threshold exactly when p < 0.05. Zero spread: 0, or 1 on the threshold."""
    v = np.asarray(values, dtype=float)
    if log:
        v, threshold = np.log(v), math.log(threshold)
    if len(v) < 2:
        return 1.0
    se = float(v.std(ddof=1)) / math.sqrt(len(v))
    gap = abs(float(v.mean()) - threshold)
    if se == 0:
        return 0.0 if gap > 0 else 1.0
    return float(2 * stats.t.sf(gap / se, len(v) - 1))


def spearman_p(rho: float, n: int, threshold: float) -> float:
    """Two-sided p-value that Spearman's ρ equals the threshold, on Fisher's z scale (as spearman_interval)."""
    if n < 4:
        return 1.0
    z = math.atanh(max(min(rho, 0.999999), -0.999999)) - math.atanh(max(min(threshold, 0.999999), -0.999999))
    return float(2 * stats.norm.sf(abs(z) * math.sqrt(n - 3)))


def holm(ps: list[float], alpha: float = 1 - LEVEL) -> list[bool]:
    """Holm's step-down correction: which of the hypotheses with these p-values are still rejected at family-wise
    level alpha. It assumes nothing about how the tests depend on each other (readings of the same runs do)."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    keep = [False] * len(ps)
    for rank, i in enumerate(order):
        if ps[i] > alpha / (len(ps) - rank):
            break
        keep[i] = True
    return keep


def benjamini_hochberg(ps: list[float], q: float = 1 - LEVEL) -> list[bool]:
    """Benjamini & Hochberg's step-up procedure: which hypotheses are rejected with the false discovery rate (the
    expected share of wrong decisions among those made) at most q. Valid for independent tests and under positive
    regression dependence (Benjamini & Yekutieli 2001), which readings of the same runs plausibly have."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    last = max((rank for rank, i in enumerate(order) if ps[i] <= q * (rank + 1) / len(ps)), default=-1)
    keep = [False] * len(ps)
    for i in order[: last + 1]:
        keep[i] = True
    return keep
