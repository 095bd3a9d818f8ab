"""Internal covariate shift, optimisation view (Santurkar et al. Fig 3; the article's Fig 7), from stored metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bnrepro.figures.shared import draw_ics


def fig_ics(metrics: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    return draw_ics(metrics, runs, out, name="fig_ics")
