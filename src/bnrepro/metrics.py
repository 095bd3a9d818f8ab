"""The metrics store: one tidy, long-form table per run (step, split, metric, value + the run's identity)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

CORE_COLUMNS = ["step", "split", "metric", "value"]
SPLITS = ("train", "test", "probe")


class MetricStore:
    def __init__(self, identity: dict):
        self.identity = dict(identity)
        self._steps: list[int] = []
        self._splits: list[str] = []
        self._metrics: list[str] = []
        self._values: list[float] = []

    def add(self, step: int, split: str, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self._steps.append(step)
            self._splits.append(split)
            self._metrics.append(name)
            self._values.append(float(value))

    def __len__(self) -> int:
        return len(self._values)

    def frame(self) -> pd.DataFrame:
        """Rows in step order, and within a step in the order they were added: a measurement that arrives late
        (from the evaluation worker) lands where an in-line one would have."""
        steps = np.asarray(self._steps, dtype=np.int64)
        order = np.argsort(steps, kind="stable")
        df = pd.DataFrame(
            {
                "step": steps[order],
                "split": pd.Categorical(np.asarray(self._splits, dtype=object)[order], categories=SPLITS),
                "metric": pd.Series(np.asarray(self._metrics, dtype=object)[order], dtype="category"),
                "value": np.asarray(self._values, dtype=np.float64)[order],
            }
        )
        for key, value in self.identity.items():
            df[key] = value
        return df

    def write(self, path: Path) -> None:
        write_parquet(self.frame(), path)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write atomically: an interrupted write never leaves a truncated file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def check_schema(df: pd.DataFrame) -> None:
    missing = [c for c in CORE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"metrics table lacks columns {missing}")
    bad = set(df["split"].astype(str).unique()) - set(SPLITS)
    if bad:
        raise ValueError(f"unknown splits {sorted(bad)}")
