"""The notebooks run against the committed results (code cells in order, headless)."""

import json

import matplotlib
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_cells_run(path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(path.parent)  # the notebooks read ../results/...
    scope: dict = {}
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert code
    import matplotlib.pyplot as plt

    plt.close("all")
    for cell in code:  # any exception (a renamed metric, a moved results file) fails the test
        exec(compile("".join(cell["source"]), path.name, "exec"), scope)
    # The plot cells leave their figures for Jupyter to show (the figures code neither closes nor swaps the
    # backend: tests/test_failures.py checks the backend in a fresh process).
    assert plt.get_fignums(), f"{path.name}: no cell drew a figure"
    assert all(plt.figure(n).axes for n in plt.get_fignums())
    plt.close("all")


def test_explore_results_judges_a_claim_on_the_users_own_runs(tmp_path, monkeypatch):
    """The notebook's RUNS: run folders (run.json + metrics.parquet) instead of the committed results."""
    import pandas as pd

    matplotlib.use("Agg")
    for variant, level in (("batch", 10.0), ("none", 50.0)):
        for seed in range(3):
            run = tmp_path / "sweep" / f"{variant}-{seed}"
            run.mkdir(parents=True)
            (run / "run.json").write_text(json.dumps({"status": "completed"}))
            probe = pd.DataFrame({"step": [10, 20, 30], "split": "probe", "metric": "landscape/gpred_max",
                                  "value": [level, level + 1, level + 2]})
            loss = pd.DataFrame({"step": [10, 20, 30], "split": "train", "metric": "loss",  # off the plateau
                                 "value": [1.5, 1.2, 1.0 + seed / 10]})
            pd.concat([probe, loss]).assign(experiment="landscape", variant=variant, lr=0.1, seed=seed).to_parquet(
                run / "metrics.parquet", index=False)
    path = ROOT / "notebooks" / "explore_results.ipynb"
    monkeypatch.chdir(path.parent)
    scope: dict = {}
    cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert sum("RUNS = []" in source for source in cells) == 1
    for source in cells:
        source = source.replace("RUNS = []", f"RUNS = [{str(tmp_path / 'sweep')!r}]")
        source = source.replace("CLAIM = 'landscape.vgg.gpred.typical'", "CLAIM = 'landscape.vgg.gpred.spikes'")
        exec(compile(source, path.name, "exec"), scope)
    assert scope["outcome"].verdict == "reproduced"  # 12 vs 52 at the spikes, in every seed
    assert set(scope["series"]["seed"]) == {0, 1, 2}
