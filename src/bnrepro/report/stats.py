"""The interval a verdict rests on: a 95% confidence interval for the mean of a per-seed statistic, by Student's t
(on the log scale for ratios, which are multiplicative), and Spearman's rank correlation with its interval."""

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
