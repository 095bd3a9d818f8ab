"""Figure helpers on tiny synthetic tables: what a figure draws is what the metrics say."""

import numpy as np
import pandas as pd
import pytest

from bnrepro.figures.cifar import quantile_histogram
from bnrepro.figures.style import provenance

pytestmark = pytest.mark.unit


def test_a_histogram_from_percentiles_holds_their_mass():
    rng = np.random.default_rng(0)
    values = rng.normal(size=100_000)
    qs = [1, 5, 10, 15, 25, 35, 50, 65, 75, 85, 90, 95, 99]
    stored = pd.Series(np.percentile(values, qs), index=[f"{q:g}" for q in qs])
    edges, density = quantile_histogram(stored.sample(frac=1, random_state=0))  # any stored order
    assert np.all(np.diff(edges) > 0) and np.all(density > 0)
    assert float(np.sum(density * np.diff(edges))) == pytest.approx(0.98)  # the 1st to the 99th percentile
    centre = np.argmax(density)  # a normal's densest interval lies by 0, with about its peak density
    assert abs(edges[centre] + edges[centre + 1]) / 2 < 0.5
    assert density[centre] == pytest.approx(1 / np.sqrt(2 * np.pi), rel=0.05)


def test_provenance_names_the_data_for_what_it_is():
    runs = pd.DataFrame({"seed": [0, 1], "git_commit": ["abcdef123", "abcdef123"], "git_dirty": [False, False],
                         "data_official": [True, True]})
    assert provenance(runs).startswith("official data · 2 seed(s) · code abcdef12")
    assert provenance(runs.assign(data="linear")).startswith("synthetic data")  # generated: never "official"
    assert provenance(runs.assign(data_official=False)).startswith("UNOFFICIAL data")
    assert provenance(runs.assign(data_official=[True, None])).startswith("UNOFFICIAL data")  # unknown is not official


def test_a_newly_registered_normaliser_is_drawn_in_its_own_colour(tmp_path, monkeypatch):
    """docs/extending.md's GroupNorm example: a run with model.norm=group appears in the variant figures with no
    other edit (labelled by its name, after the known variants, in a colour no known variant has)."""
    from bnrepro.figures import variants as variants_fig
    from bnrepro.labels import VARIANTS, colour, ordered

    rows = [{"step": s, "split": split, "metric": metric, "value": 1.0 / (1 + s) if metric == "loss" else s / 100,
             "experiment": "toy", "variant": v, "lr": 0.1, "seed": seed, "run_id": f"{v}-{seed}"}
            for v in ("none", "batch", "group") for seed in (0, 1) for s in range(0, 101, 10)
            for split, metric in (("train", "loss"), ("train", "acc"), ("test", "acc"))]
    metrics = pd.DataFrame(rows)
    runs = pd.DataFrame({"run_id": sorted(set(metrics["run_id"])), "experiment": "toy", "seed": 0,
                         "git_commit": "abc", "git_dirty": False, "data_official": True})
    drawn = {}
    monkeypatch.setattr(variants_fig, "save", lambda fig, out, name, note: drawn.setdefault("fig", fig) and [])
    variants_fig.fig_variants(metrics, runs, tmp_path)
    legend = [t.get_text() for ax in drawn["fig"].axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "group" in legend and "with BN" in legend
    assert ordered(["group", "batch", "none"]) == ["none", "batch", "group"]
    assert colour("group") not in {c for _, _, c in VARIANTS} and colour("group") == colour("group")
