"""Where things are: each experiment names its figures in its config, one loader draws them, and figure modules share
only shared.py and style.py."""

import ast

import pytest
from omegaconf import OmegaConf

from bnrepro import figures
from tests.conftest import CONFIGS, ROOT

pytestmark = pytest.mark.unit

EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_names_figures_that_exist(experiment):
    spec = figures.spec(experiment)
    assert spec.draw, f"configs/experiment/{experiment}.yaml draws no figures"
    for name in spec.draw:
        assert callable(figures.function(name))


def test_every_experiment_name_is_a_config_its_results_can_be_drawn_by():
    for path in (CONFIGS / "experiment").glob("*.yaml"):
        name = OmegaConf.load(path).get("experiment_name")
        if name is not None:
            assert (CONFIGS / "experiment" / f"{name}.yaml").is_file(), f"{path.name}: experiment_name {name}"


def test_an_unknown_figure_name_is_a_clear_error():
    with pytest.raises(ValueError, match="figures.draw names 'mnist.fig99'"):
        figures.function("mnist.fig99")


def test_figure_modules_import_only_the_shared_pieces():
    shared = {"bnrepro.figures.shared", "bnrepro.figures.style"}
    for path in (ROOT / "src" / "bnrepro" / "figures").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        others = {m for m in imported if m.startswith("bnrepro.figures.")} - shared
        assert not others, f"{path.name} imports {others}"
