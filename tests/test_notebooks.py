"""The notebooks run against the committed results (code cells in order, headless)."""

import json

import matplotlib
import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_cells_run(path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(path.parent)  # the notebooks read ../results/...
    scope: dict = {}
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert code
    for cell in code:  # any exception (a renamed metric, a moved results file) fails the test
        exec(compile("".join(cell["source"]), path.name, "exec"), scope)
