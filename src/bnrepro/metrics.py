"""The metrics store: one tidy, long-form table per run (step, split, metric, value + the run's identity)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from bnrepro import ResultsError
from bnrepro.io_utils import replace_atomic

CORE_COLUMNS = ["step", "split", "metric", "value"]
SPLITS = ("train", "test", "probe")


@dataclasses.dataclass(frozen=True)
class Identity:
    """The columns every row of a run carries (config.plan.resolve fills them in): the first four name the run, the
    others are settings a summary names where its runs differ (mnist_batch_size's batch sizes)."""

    experiment: str
    variant: str
    lr: float
    seed: int
    batch_size: int
    momentum: float
    init: str
    max_steps: int


IDENTITY = [f.name for f in dataclasses.fields(Identity)]
RUN_KEYS, SETTINGS = IDENTITY[:4], IDENTITY[4:]


class MetricStore:
    def __init__(self, identity: Identity):
        self.identity = dataclasses.asdict(identity)
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

    def rows(self) -> tuple[list, list, list, list]:
        """The rows so far, for a checkpoint."""
        return list(self._steps), list(self._splits), list(self._metrics), list(self._values)

    def extend(self, rows: tuple[list, list, list, list]) -> None:
        for mine, theirs in zip((self._steps, self._splits, self._metrics, self._values), rows):
            mine.extend(theirs)

    def __len__(self) -> int:
        return len(self._values)

    def frame(self) -> pd.DataFrame:
        """Rows in the order they were added, which is step order: everything is measured in line."""
        df = pd.DataFrame(
            {
                "step": np.asarray(self._steps, dtype=np.int64),
                "split": pd.Categorical(self._splits, categories=SPLITS),
                "metric": pd.Series(self._metrics, dtype="category"),
                "value": np.asarray(self._values, dtype=np.float64),
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
    replace_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


def check_schema(df: pd.DataFrame) -> None:
    missing = [c for c in CORE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"metrics table lacks columns {missing}")
    bad = set(df["split"].astype(str).unique()) - set(SPLITS)
    if bad:
        raise ValueError(f"unknown splits {sorted(bad)}")


RUNS_COLUMNS = ("run_id", "experiment", "variant", "lr", "seed")  # what every reader of runs.csv needs


def read_table(path: Path, remedy: str) -> pd.DataFrame:
    """A parquet or csv file of stored results; ResultsError naming it and `remedy` when it cannot be read."""
    path = Path(path)
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as e:  # pyarrow, pandas and the OS each raise their own kinds for a damaged file
        said = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        raise ResultsError(f"{path} cannot be read ({said}): {remedy}") from None


def read_results(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """results/<name>/'s metrics.parquet and runs.csv, checked: ResultsError naming a damaged file, or a table
    without the columns every reader needs, and how to make it again."""
    folder = Path(folder)
    remedy = (f"make it again with the experiment's make target (`make {folder.name.replace('_', '-')}`; `make "
              f"help` lists them) or `python experiments/collect.py <its runs> --out {folder}`, or restore a "
              f"committed copy (`git checkout -- {folder}`)")
    metrics, runs = read_table(folder / "metrics.parquet", remedy), read_table(folder / "runs.csv", remedy)
    for table, name, needed in ((metrics, "metrics.parquet", CORE_COLUMNS + ["run_id"]),
                                (runs, "runs.csv", list(RUNS_COLUMNS))):
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise ResultsError(f"{folder / name} lacks the column(s) {', '.join(missing)}: {remedy}")
    return metrics, runs
