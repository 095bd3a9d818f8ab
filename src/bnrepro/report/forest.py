"""A forest plot per question (results/report/forest_<question>.png): every row that has an interval, its effect
and 95% interval on the test's own scale (log for ratios), the passing range shaded, on one line each; the sources'
deciding rows first, then the extensions, then the checks (sanity, control, fitted). Drawn from the judged rows,
never from a retrained run; the same rows give the same bytes."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt

from bnrepro.report.evaluate import Outcome
from bnrepro.report.rollup import Answer
from bnrepro.report.text import fmt

COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "inconclusive": "#6e7781", "not testable": "#afb8c1"}
GROUPS = ("the sources' statements", "extensions (not counted)", "checks: sanity, control, fitted (decide nothing)")


def groups(a: Answer) -> list[tuple[str, list[Outcome]]]:
    rows = [o for s in a.statements + a.extensions for o in s.rows if o.estimate is not None]
    parts = ([o for o in rows if o.claim.counts and not o.claim.extension],
             [o for o in rows if o.claim.counts and o.claim.extension], [o for o in rows if not o.claim.counts])
    return [(name, part) for name, part in zip(GROUPS, parts) if part]


def draw(a: Answer, path: Path) -> bool:
    """One question's forest plot; False (nothing written) when no row of it has an interval. Drawn in matplotlib's
    default style whatever style the process has set (a figure module's seaborn theme), so the same rows give the
    same bytes from `make report` and from a test or a notebook."""
    sections = groups(a)
    if not sections:
        return False
    with plt.style.context("default"):
        _draw(a, sections, path)
    return True


def _draw(a: Answer, sections: list[tuple[str, list[Outcome]]], path: Path) -> None:
    n = sum(len(rows) + 1 for _, rows in sections)
    height = 0.34 * n + 0.9
    fig, axes = plt.subplots(n, 1, figsize=(9, height), squeeze=False)
    i = 0
    for name, rows in sections:
        header = axes[i, 0]
        header.axis("off")
        header.text(0, 0.2, name, fontsize=8, fontweight="bold", transform=header.transAxes)
        i += 1
        for o in rows:
            row(axes[i, 0], o)
            i += 1
    fig.suptitle(a.question.question, fontsize=9, x=0.01, y=1 - 0.12 / height, ha="left", va="top")
    fig.subplots_adjust(left=0.36, right=0.86, top=1 - 0.65 / height, bottom=0.15 / height, hspace=1.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)


def row(ax, o: Outcome) -> None:
    """One row: the interval and its effect, the threshold(s), the passing range shaded; hollow for a sign test
    (no margin), an arrow for a bound."""
    c, (est, lo, hi) = o.claim, o.estimate
    log = o.log
    f = (lambda x: math.log10(x)) if log else (lambda x: x)
    finite = [x for x in (lo, hi, est, c.test.lo, c.test.hi) if math.isfinite(x) and (x > 0 or not log)]
    left, right = min(map(f, finite)), max(map(f, finite))
    pad = (right - left) * 0.15 or (abs(left) * 0.1 or 1.0)
    x0, x1 = left - pad, right + pad
    shade_lo = f(c.test.lo) if math.isfinite(c.test.lo) and (c.test.lo > 0 or not log) else x0
    shade_hi = f(c.test.hi) if math.isfinite(c.test.hi) else x1
    ax.axvspan(max(shade_lo, x0), min(shade_hi, x1), color="#2da44e", alpha=0.15, linewidth=0)
    for t in (c.test.lo, c.test.hi):
        if math.isfinite(t) and (t > 0 or not log):
            ax.axvline(f(t), color="#57606a", linewidth=0.8)
    colour = COLOURS.get(o.result, "#afb8c1")
    ax.plot([f(lo), f(hi)], [0, 0], color=colour, linewidth=2)
    marker = (">" if o.bound > 0 else "<") if o.bound else "o"
    ax.plot([f(est)], [0], marker=marker, markersize=5, color=colour,
            markerfacecolor="white" if c.sign_only else colour)
    ax.set_xlim(x0, x1)
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=6, length=2, pad=1)
    ax.xaxis.set_major_locator(plt.MaxNLocator(4))
    # the report's own number format, and no offset text ("1e12") for another row to overlap
    ax.xaxis.set_major_formatter(plt.FuncFormatter((lambda v, _: fmt(10 ** v)) if log else (lambda v, _: fmt(v))))
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    scale = " (log)" if log else ""
    sign = ", sign only" if c.sign_only else ""
    ax.text(-0.02, 0, f"{c.id}{scale}", fontsize=6.5, ha="right", va="center", transform=ax.transAxes)
    ax.text(1.02, 0, f"{o.verdict}{sign}", fontsize=6.5, ha="left", va="center", color=colour,
            transform=ax.transAxes)


def draw_all(ans: list[Answer], folder: Path) -> set[str]:
    """Every question's forest plot into folder/forest_<question>.png; the ids of the questions drawn."""
    return {a.question.id for a in ans if draw(a, Path(folder) / f"forest_{a.question.id}.png")}
