"""Internal covariate shift, optimisation view (Santurkar et al. Fig 3; the article's Fig 7), from stored metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bnrepro.figures.panels import fig_ics


def fig3_ics(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    return fig_ics(metrics, runs, out)
