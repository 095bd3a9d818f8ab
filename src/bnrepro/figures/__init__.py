"""Figures drawn only from stored metrics (results/<name>/metrics.parquet and runs.csv); nothing here trains.

Each experiment names its figures, and the options of its summary table, in its config (configs/experiment/*.yaml,
`figures:`). A results folder is drawn by the experiment its runs recorded: runs.csv's `experiment` column names
the config. Every figure function takes (metrics, runs, out folder) and returns the files it wrote.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bnrepro.paths import PROJECT_ROOT

CONFIGS = PROJECT_ROOT / "configs"


@dataclass
class Results:
    folder: Path
    metrics: pd.DataFrame
    runs: pd.DataFrame


def load(folder: Path) -> Results:
    """The one loader every figure and summary reads through."""
    from bnrepro.metrics import read_results

    folder = Path(folder)
    return Results(folder, *read_results(folder))


@dataclass
class FigureSpec:
    experiment: str
    draw: list[str] = field(default_factory=list)  # "module.function" under bnrepro.figures
    summary: dict = field(default_factory=dict)  # keyword arguments of bnrepro.collect.summarize


def spec(experiment: str) -> FigureSpec:
    """The `figures:` block of configs/experiment/<experiment>.yaml, composed (so that it inherits from the
    configs it builds on)."""
    from omegaconf import OmegaConf

    from bnrepro.config import compose

    if not (CONFIGS / "experiment" / f"{experiment}.yaml").is_file():
        raise FileNotFoundError(f"no configs/experiment/{experiment}.yaml: runs.csv names an experiment this "
                                "checkout does not have")
    figures = compose(f"experiment={experiment}").figures
    return FigureSpec(experiment, list(figures.draw), OmegaConf.to_container(figures.summary))


def function(name: str) -> Callable:
    module, _, fn = name.rpartition(".")
    try:
        return getattr(importlib.import_module(f"bnrepro.figures.{module}"), fn)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"figures.draw names {name!r}, which is not a function in bnrepro.figures ({e})") from e


def experiment_of(results: Results) -> str:
    names = sorted(results.runs["experiment"].dropna().astype(str).unique())
    if len(names) != 1:
        raise ValueError(f"{results.folder}/runs.csv holds runs of {names or 'no experiment'}: one experiment per "
                         "results folder")
    return names[0]


def draw(results: Results, figure_spec: FigureSpec | None = None) -> list[Path]:
    s = figure_spec or spec(experiment_of(results))
    return [path for name in s.draw for path in function(name)(results.metrics, results.runs, results.folder)]
