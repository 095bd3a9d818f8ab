"""docs/extending.md's examples, as a user follows them: the code in the doc is the code the test runs."""

import re

import matplotlib
import pytest

from bnrepro import ConfigError
from tests.conftest import ROOT, make_cfg, small_overrides

DOC = ROOT / "docs" / "extending.md"


def doc_normaliser() -> str:
    """The first python block of the section "A new normaliser"."""
    section = DOC.read_text().split("## A new normaliser", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def group_norm():
    """The doc's example registered as it says, in models/norms.py's namespace; undone when the test ends."""
    from bnrepro.models import norms

    saved = dict(norms.NORMS), dict(norms.CHECKS), set(norms.AFFINE)
    exec(doc_normaliser(), vars(norms))  # noqa: S102 - the documented example, verbatim
    yield norms
    for live, before in zip((norms.NORMS, norms.CHECKS, norms.AFFINE), saved):
        live.clear()
        live.update(before)


@pytest.mark.unit
def test_a_bad_width_for_the_new_normaliser_is_refused_in_one_line(group_norm):
    from bnrepro.config.check import check

    with pytest.raises(ConfigError) as e:
        check(make_cfg("experiment=mnist_bn", "model.norm=group", "model.hidden=[102,102,102]"))
    assert str(e.value) == "model.norm=group cannot normalise a layer of 102 features: 4 groups do not divide it"
    check(make_cfg("experiment=mnist_bn", "model.norm=group", "model.affine=false"))  # both ways


@pytest.mark.integration
def test_the_docs_normaliser_runs_through_train_collect_figures_and_the_report(tmp_path, mnist_data, group_norm,
                                                                              monkeypatch):
    """Trained with model.affine both ways beside the standard network and BN: the new variants are in every
    mnist_bn figure's data and legend, and the report builds from the results."""
    from bnrepro import figures
    from bnrepro.collect import write_results
    from bnrepro.figures import style
    from bnrepro.report import build
    from bnrepro.run import train

    matplotlib.use("Agg")
    runs = tmp_path / "runs"
    for name, extra in (("none", ["model.norm=none"]), ("batch", ["model.norm=batch"]),
                        ("group", ["model.norm=group"]), ("group_na", ["model.norm=group", "model.affine=false"])):
        info = train(make_cfg(*small_overrides(mnist_data, steps=40), "trainer.eval_every=20",
                              "trainer.probe_every=20", *extra), runs / name)
        assert info["status"] == "completed"
    results = tmp_path / "results"
    write_results([runs], results / "mnist_bn")
    drawn = {}

    def keep(fig, out, name, footnote):
        drawn[name] = fig
        return []

    monkeypatch.setattr("bnrepro.figures.mnist.save", keep)  # the figures, kept to read their legends
    loaded = figures.load(results / "mnist_bn")
    assert set(loaded.metrics["variant"]) == {"none", "batch", "group", "group_no_affine"}
    figures.draw(loaded)
    assert set(drawn) == {"fig2_training_curves", "fig3_last_layer_percentiles", "fig4_hidden_layers"}
    legend = {t.get_text() for ax in drawn["fig2_training_curves"].axes if ax.get_legend()
              for t in ax.get_legend().get_texts()}
    assert {"group", "group_no_affine", "with BN", "without BN"} <= legend
    for name in ("fig3_last_layer_percentiles", "fig4_hidden_layers"):
        titles = " ".join(ax.get_title() for ax in drawn[name].axes)
        assert "group ·" in titles and "group_no_affine ·" in titles, name
    colours = style.palette(["none", "batch", "group", "group_no_affine"])
    assert len(set(colours.values())) == 4
    claims = tmp_path / "claims.yaml"
    claims.write_text(CLAIMS)
    pages, outcomes = build(results, claims, draw=False)
    assert [(o.claim.id, o.result) for o in outcomes] == [("group.vs_batch", "inconclusive")]  # one seed
    assert "group.vs_batch" in "".join(pages.values())


CLAIMS = """\
seeds: 1
questions:
  - id: group
    question: Does GroupNorm train as BN does?
    changes: more seeds.
figures:
  - id: group_fig
    results: mnist_bn
    file: fig2_training_curves.png
    title: GroupNorm beside BN
    shows: Training curves.
    command: python experiments/train.py -m experiment=mnist_bn model.norm=none,batch,group
    protocol: The article's MNIST network, shrunk.
claims:
  - id: group.vs_batch
    figure: group_fig
    source: extension (ours)
    claim: GroupNorm ends as high as BN.
    reading: final test accuracy, GroupNorm − BN
    kind: direction
    question: group
    metric: test/acc
    reduce: final
    a: {variant: group}
    b: {variant: batch}
    test: {stat: difference, at_least: -0.01}
"""
