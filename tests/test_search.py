"""Search scoring on tiny synthetic metrics: the errors in tolerances, the upper bound, and the ranking."""

import math

import pandas as pd
import pytest
from omegaconf import OmegaConf

from bnrepro.search import error, score

pytestmark = pytest.mark.unit


def test_errors_and_ranking():
    search = OmegaConf.create({"grid": {"optim.lr": "0.1,1", "model.norm": "none,batch"}, "targets": [
        {"name": "acc", "where": {"model.norm": "batch"}, "metric": "test/acc", "step": "last", "paper": 0.9,
         "scale": "linear", "tol": 0.1},
        {"name": "early", "where": {"model.norm": "none"}, "metric": "test/acc", "step": 1, "paper": 0.5,
         "scale": "linear", "tol": 0.1, "bound": "upper"}]})
    settings = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "optim.lr": [0.1, 0.1, 1, 1],
                             "model.norm": ["batch", "none", "batch", "none"]})
    rows = [("a", 2, 0.9), ("b", 1, 0.3), ("c", 2, 0.7), ("d", 1, 0.7)]
    metrics = pd.DataFrame([{"run_id": r, "split": "test", "metric": "acc", "step": s, "value": v} for r, s, v in rows])
    scores = score(metrics, settings, search)
    assert list(scores["optim.lr"]) == [0.1, 1]
    assert scores.loc[0, "score"] == 0 and math.isclose(scores.loc[1, "score"], math.sqrt((4 + 4) / 2))
    assert error(0.3, search.targets[1]) == 0  # below an upper bound counts nothing
    log = OmegaConf.create({"scale": "log", "paper": 100.0, "tol": 0.25})
    assert math.isclose(error(125.0, log), 1) and error(math.nan, log) == math.inf
