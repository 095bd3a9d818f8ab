"""The loss landscape along the gradient (Santurkar et al. Fig 4; the article's Fig 8) and the gradient change
against the step size (Fig 11), from stored metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bnrepro.figures.panels import fig_gpred_vs_eta, fig_landscape
from bnrepro.figures.style import has_metric


def fig4_landscape(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    return fig_landscape(metrics, runs, out, variants=["none", "batch"])  # Fig 12 draws the lp-normalised ones


def fig11_gpred_vs_eta(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    if not has_metric(metrics, r"^landscape/eta/[^/]+/gpred$"):  # results recorded before the per-step-size metrics
        return []
    return fig_gpred_vs_eta(metrics, runs, out, "fig_santurkar11_gpred_vs_eta")
