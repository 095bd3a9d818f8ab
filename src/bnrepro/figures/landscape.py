"""The loss landscape along the gradient (Santurkar et al. Fig 4; the article's Fig 8) and the gradient change
against the step size (Fig 11), from stored metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bnrepro.figures.shared import draw_gpred_vs_eta, draw_landscape
from bnrepro.figures.style import has_metric


def fig_landscape(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    # Standard and BN only: Fig 12 (lp_norm.fig_lp_norm_landscape) draws the lp-normalised ones.
    return draw_landscape(metrics, runs, out, name="fig_landscape", variants=["none", "batch"])


def fig_santurkar11_gpred_vs_eta(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    if not has_metric(metrics, r"^landscape/eta/[^/]+/gpred$"):  # results recorded before the per-step-size metrics
        return []
    return draw_gpred_vs_eta(metrics, runs, out, "fig_santurkar11_gpred_vs_eta")
