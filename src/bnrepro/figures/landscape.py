"""The loss landscape along the gradient (Santurkar et al. Fig 4; the article's Fig 8), the gradient change
against the step size (Fig 11), and the effective β-smoothness against the edge of stability 2/lr (Cohen et al.
2021), from stored metrics."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bnrepro.figures.shared import draw_gpred_vs_eta, draw_landscape, median_and_range
from bnrepro.figures.style import colour, compared, has_metric, label, ordered, provenance, save, setup


def fig_landscape(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    # Standard and BN only: Fig 12 (lp_norm.fig_lp_norm_landscape) draws the lp-normalised ones.
    return draw_landscape(metrics, runs, out, name="fig_landscape",
                          variants=compared(metrics["variant"].astype(str).unique()))


def fig_santurkar11_gpred_vs_eta(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    if not has_metric(metrics, r"^landscape/eta/[^/]+/gpred$"):  # results recorded before the per-step-size metrics
        return []
    return draw_gpred_vs_eta(metrics, runs, out, "fig_santurkar11_gpred_vs_eta")


def fig_edge_of_stability(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    """β / (2/lr) over training, one panel per learning rate, the standard network and BN (every variant where
    neither is stored): 1 is the edge of stability, where gradient descent's curvature settles (Cohen et al. 2021)
    and SGD's along its batch gradient (Andreyev & Beneventano 2024). Line: the median over seeds; band: their
    range."""
    if not has_metric(metrics, "^landscape/beta$"):
        return []
    setup()
    d = metrics[(metrics["split"] == "probe") & (metrics["metric"] == "landscape/beta")].copy()
    d["variant"] = d["variant"].astype(str)
    d["eos"] = d["value"].astype("float64") * d["lr"].astype("float64") / 2
    present = set(d["variant"])
    variants = compared(present) or ordered(present)
    lrs = sorted(d["lr"].unique())
    fig, axes = plt.subplots(1, len(lrs), figsize=(3.6 * len(lrs) + 0.6, 3.6), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, lr in zip(axes[0], lrs):
        for v in variants:
            by_step = d[(d["variant"] == v) & np.isclose(d["lr"], lr)].groupby("step")["eos"]
            if by_step.ngroups == 0:
                continue
            median_and_range(ax, by_step, colour(v), label(v), linewidth=1)
        ax.axhline(1.0, color="#444444", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_title(f"lr {lr:g} (2/lr = {2 / lr:.3g})", fontsize=10)
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("β / (2/lr)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Effective β-smoothness against the edge of stability (dashed: β = 2/lr; Cohen et al. 2021)")
    seeds = d["seed"].nunique()
    return save(fig, out, "fig_edge_of_stability", provenance(runs, "β: max over η of ‖Δg‖ / (η‖g‖), same batch" + (
        f"; line: median, band: range over {seeds} seeds" if seeds > 1 else "")))
