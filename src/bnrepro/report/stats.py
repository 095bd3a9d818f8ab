"""The interval a verdict rests on: a 95% confidence interval for the mean of a per-seed statistic, by Student's t
(on the log scale for ratios, which are multiplicative). Written out here rather than imported from scipy, which
the project does not otherwise need."""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Numerical Recipes, Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def t_cdf(t: float, df: int) -> float:
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with df degrees of freedom, by bisection on the cdf."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def resolution(n: int) -> float:
    """The smallest mean effect, in units of the seed-to-seed sd, whose 95% interval excludes zero with n seeds."""
    return t_quantile(1 - (1 - LEVEL) / 2, n - 1) / math.sqrt(n) if n > 1 else math.inf


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
    """Spearman's rank correlation of paired values and its 95% interval (Fisher's z, standard error
    1/sqrt(n - 3)); fewer than 4 pairs give an unbounded interval."""
    rx, ry = np.argsort(np.argsort(x)).astype(float), np.argsort(np.argsort(y)).astype(float)
    rho = float(np.corrcoef(rx, ry)[0, 1]) if len(rx) > 1 and rx.std() and ry.std() else 0.0
    if len(rx) < 4:
        return rho, -1.0, 1.0
    z, half = math.atanh(max(min(rho, 0.999999), -0.999999)), 1.959964 / math.sqrt(len(rx) - 3)  # normal 97.5%
    return rho, math.tanh(z - half), math.tanh(z + half)
