"""The report generator on small stored-metrics fixtures the tests write: a row passes or fails only when its 95%
interval over seeds is on one side, preconditions make rows "not testable", controls and sanity checks never count
as reproductions, statements and questions roll up from their rows, and a malformed claims file is a clear error."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from bnrepro.report import ClaimsError, answers, build, load, load_all, statements
from bnrepro.report.rollup import independent_run_sets, strongest
from bnrepro.report.series import reduce
from bnrepro.report.stats import benjamini_hochberg, holm, interval, p_value, resolution
from bnrepro.report.text import effect
from tests.conftest import ROOT, run_cli

HEAD = """\
questions:
  - id: q
    question: Does BN help?
    changes: more seeds.
figures:
  - id: toy_fig
    results: toy
    file: fig_toy.png
    title: A toy figure
    shows: Two variants' curves.
    command: make toy seeds=3
    protocol: A synthetic fixture.
"""


def write_results(folder: Path, final_acc: dict[str, list[float]], steps: int = 100,
                  probe: dict[str, list[float]] | None = None, loss: dict[str, float] | None = None) -> None:
    """results/<name>/metrics.parquet and runs.csv as `collect` writes them: per variant, one run per seed whose test
    accuracy climbs linearly to final_acc[variant][seed], a training loss at loss[variant] (default 1.0), and
    optionally a probe metric at a constant level."""
    rows, runs = [], []
    for variant, finals in final_acc.items():
        for seed, final in enumerate(finals):
            run_id = f"sweep/{variant}-{seed}"
            for step in range(0, steps + 1, 10):
                rows.append((step, "test", "acc", final * step / steps, variant, seed, run_id))
                rows.append((step, "train", "loss", (loss or {}).get(variant, 1.0) + seed * 1e-3 + step * 1e-6,
                             variant, seed, run_id))
                if probe:
                    rows.append((step, "probe", "landscape/beta", probe[variant][seed], variant, seed, run_id))
            runs.append({"run_id": run_id, "experiment": "toy", "variant": variant, "lr": 0.1, "seed": seed,
                         "status": "completed", "data_official": True, "git_commit": "abcdef1234567890",
                         "git_dirty": False})
    folder.mkdir(parents=True, exist_ok=True)
    m = pd.DataFrame(rows, columns=["step", "split", "metric", "value", "variant", "seed", "run_id"])
    m.assign(experiment="toy", lr=0.1).to_parquet(folder / "metrics.parquet", index=False)
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False)


def write_claims(path: Path, claims: str, seeds: int = 3, head: str = HEAD) -> Path:
    path.write_text(f"seeds: {seeds}\n" + head + "claims:\n" + textwrap.indent(textwrap.dedent(claims), "  "))
    return path


def row(id: str = "toy.higher", claim: str = "BN ends higher.", kind: str = "direction", test: str =
        "{stat: difference, at_least: 0}", extra: str = "", a: str = "{variant: batch}", b: str = "{variant: none}"):
    return f"""\
- id: {id}
  figure: toy_fig
  source: article, a toy claim
  claim: {claim}
  reading: final test accuracy
  kind: {kind}
  question: q
  metric: test/acc
  reduce: final
  a: {a}
  b: {b}
  test: {test}
{extra}"""


BN_HIGHER = row()
HIGH = {"batch": [0.9, 0.91, 0.92], "none": [0.8, 0.81, 0.79]}
LOW = {"batch": [0.7, 0.71, 0.72], "none": [0.8, 0.81, 0.79]}


def outcomes(tmp_path, claims: str, results: dict, **kw):
    path = write_claims(tmp_path / "claims.yaml", claims, seeds=kw.pop("seeds", 3))
    write_results(tmp_path / "results" / "toy", results, **kw)
    return build(tmp_path / "results", path)


def verdicts(tmp_path, claims: str, results: dict, **kw) -> dict[str, str]:
    return {o.claim.id: o.verdict for o in outcomes(tmp_path, claims, results, **kw)[1]}


@pytest.mark.unit
def test_t_quantiles_intervals_and_what_the_seeds_resolve():
    assert [round(resolution(n), 2) for n in (3, 5, 10)] == [2.48, 1.24, 0.72]
    est, lo, hi = interval([1.0, 2.0, 3.0])
    assert (est, lo, hi) == pytest.approx((2.0, 2.0 - 2.484, 2.0 + 2.484), abs=1e-3)
    est, lo, hi = interval([1.0, 4.0], log=True)  # geometric: symmetric on the log scale
    assert est == pytest.approx(2.0) and lo * hi == pytest.approx(4.0)
    assert interval([5.0])[1:] == (-np.inf, np.inf)  # one seed says nothing about the spread


@pytest.mark.unit
def test_the_verdict_follows_the_interval(tmp_path):
    assert verdicts(tmp_path, BN_HIGHER, HIGH) == {"toy.higher": "reproduced"}
    assert verdicts(tmp_path, BN_HIGHER, LOW) == {"toy.higher": "not reproduced"}
    # every seed passes, but the effect is small against its spread: the interval reaches below 0
    (o,) = outcomes(tmp_path, BN_HIGHER, {"batch": [0.501, 0.501, 0.8], "none": [0.5, 0.5, 0.5]})[1]
    assert o.verdict == "inconclusive" and "overlaps the threshold" in o.reason
    assert o.estimate[1] < 0 < o.estimate[0]


@pytest.mark.unit
def test_a_clear_effect_at_five_seeds_is_reproduced_and_a_zero_effect_inconclusive(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, 5)
    clear = {"batch": list(0.85 + 0.03 + noise), "none": list(0.85 + rng.normal(0, 0.01, 5))}
    assert verdicts(tmp_path, BN_HIGHER, clear, seeds=5) == {"toy.higher": "reproduced"}
    zero = {"batch": list(0.85 + noise), "none": list(0.85 - noise[::-1])}  # mean difference exactly 0
    assert verdicts(tmp_path, BN_HIGHER, zero, seeds=5) == {"toy.higher": "inconclusive"}


@pytest.mark.unit
def test_fewer_seeds_than_required_is_inconclusive(tmp_path):
    (o,) = outcomes(tmp_path, BN_HIGHER, {"batch": [0.9, 0.91], "none": [0.8, 0.81]})[1]
    assert (o.verdict, o.reason) == ("inconclusive", "2 seed(s) with a value, 3 required")
    assert verdicts(tmp_path, BN_HIGHER, {"batch": [0.9, 0.91], "none": [0.8, 0.81]}, seeds=2) == \
        {"toy.higher": "reproduced"}


@pytest.mark.unit
def test_missing_results_are_not_run_with_their_command_and_an_unrecorded_metric_is_refused(tmp_path):
    claims = BN_HIGHER + row("toy.probe").replace("test/acc", "landscape/gpred_max")
    path = write_claims(tmp_path / "claims.yaml", claims)
    pages, outs = build(tmp_path / "results", path)  # no results folder at all
    assert [o.verdict for o in outs] == ["not run", "not run"] and "`make toy seeds=3`" in pages["report/toy_fig.md"]
    with pytest.raises(ClaimsError, match="toy.probe: metric 'landscape/gpred_max' is recorded by no stored result"):
        verdicts(tmp_path, claims, HIGH)
    misspelt = BN_HIGHER + row("toy.typo").replace("metric: test/acc", "metric: test/accc")
    with pytest.raises(ClaimsError, match=r"toy.typo: metric 'test/accc' .*did you mean test/acc\?"):
        verdicts(tmp_path, misspelt, HIGH)


@pytest.mark.unit
def test_runs_that_never_reach_the_threshold_decide_only_as_a_bound(tmp_path):
    faster = row("toy.faster", test="{stat: ratio, at_least: 1.5}", a="{variant: none}", b="{variant: batch}") \
        .replace("reduce: final", "reduce: {how: steps_to, threshold: 0.45}")
    never = {"batch": [0.9, 0.95, 1.0], "none": [0.4, 0.4, 0.4]}  # BN gets to 0.45 at step 50; none never (> 100)
    (o,) = outcomes(tmp_path, faster, never)[1]
    assert o.verdict == "reproduced" and "bound" in o.reason  # none / BN ≥ 100 / 50
    (o,) = outcomes(tmp_path, faster.replace("at_least: 1.5", "at_most: 1.5"), never)[1]
    assert o.verdict == "not reproduced"  # at least 2 is already above 1.5
    # 100 / 50 ≤ 3, but none's true steps could be any number above 100: the bound points the wrong way
    (o,) = outcomes(tmp_path, faster.replace("at_least: 1.5", "at_most: 3"), never)[1]
    assert o.verdict == "inconclusive" and "never reached" in o.reason
    # every seed of one side censored: the effect is shown as a bound, not a value
    (o,) = outcomes(tmp_path, faster, never)[1]
    assert o.bound == 1 and "≥ 2" in effect(o) and "a bound" in effect(o)
    assert verdicts(tmp_path, faster, {"batch": [0.9, 0.95, 1.0], "none": [0.9, 0.95, 1.0]}) == \
        {"toy.faster": "not reproduced"}


@pytest.mark.unit
def test_paper_values_within_a_tolerance(tmp_path):
    paper = row("toy.paper", kind="paper_value", test="{stat: value, near: 20, factor: 1.25}", b="null") \
        .replace("metric: test/acc", "metric: landscape/beta").replace("reduce: final", "reduce: median")
    probe = {"batch": [19.0, 21.0, 20.0], "none": [5.0, 50.0, 9.0]}
    assert verdicts(tmp_path, paper, HIGH, probe=probe) == {"toy.paper": "reproduced"}
    probe = {"batch": [40.0, 41.0, 45.0], "none": [5.0, 50.0, 9.0]}
    assert verdicts(tmp_path, paper, HIGH, probe=probe) == {"toy.paper": "not reproduced"}


@pytest.mark.unit
def test_a_failed_precondition_makes_a_row_not_testable(tmp_path):
    req = "  requires: {metric: train/loss, reduce: median, at_most: 2.0, why: off the plateau}\n"
    (o,) = outcomes(tmp_path, row(extra=req), HIGH, loss={"batch": 1.0, "none": 2.3})[1]
    assert o.verdict == "not testable" and "variant=none has 2.3" in o.reason and not o.stats
    assert verdicts(tmp_path, row(extra=req), HIGH, loss={"batch": 1.0, "none": 1.5}) == {"toy.higher": "reproduced"}
    # the baseline's sides are read too, so their precondition holds for them as well
    did = row("toy.did", kind="control", extra="  baseline: {a: {variant: layer}, b: {variant: none}}\n" + req)
    results = {"batch": [0.9, 0.91, 0.92], "none": [0.8, 0.81, 0.79], "layer": [0.85, 0.86, 0.84]}
    (o,) = outcomes(tmp_path, did, results, loss={"batch": 1.0, "none": 1.0, "layer": 2.3})[1]
    assert o.verdict == "not testable" and "variant=layer has 2.3" in o.reason
    assert outcomes(tmp_path, did, results, loss={"batch": 1.0, "none": 1.0, "layer": 1.0})[1][0].verdict == \
        "supports the claim"


@pytest.mark.unit
def test_controls_sanity_checks_and_fitted_rows_never_count_as_reproductions(tmp_path):
    claims = row("toy.d") + row("toy.c", kind="control") + row("toy.s", kind="sanity") + row("toy.f", kind="fitted")
    _, outs = outcomes(tmp_path, claims, HIGH)
    assert [o.verdict for o in outs] == ["reproduced", "supports the claim", "holds, as it must", "matches (fitted)"]
    (st,) = statements(outs)
    assert st.verdict == "holds" and [o.claim.id for o in st.deciding] == ["toy.d"]
    pages, outs = outcomes(tmp_path, claims, LOW)
    assert [o.verdict for o in outs][1] == "undercuts the claim"
    assert "directions: **contradicted** · controls: 1 undercut it" in pages["REPORT.md"]  # said beside the answer
    only_checks = row("toy.s", kind="sanity") + row("toy.f", kind="fitted")
    (st,) = statements(outcomes(tmp_path, only_checks, HIGH)[1])
    assert st.verdict == "checks only"


@pytest.mark.unit
def test_statements_and_questions_roll_up_from_their_rows(tmp_path):
    claims = (row("toy.a") + row("toy.b", test="{stat: difference, at_least: 0.5}")  # same statement, one fails
              + row("toy.c", claim="BN ends somewhat higher."))
    pages, outs = outcomes(tmp_path, claims, HIGH)
    md = pages["REPORT.md"]
    sts = statements(outs)
    assert [(s.text, s.verdict) for s in sts] == [("BN ends higher.", "mixed"), ("BN ends somewhat higher.", "holds")]
    assert strongest(sts[0].deciding, "pass")[0].claim.id == "toy.a"
    assert strongest(sts[0].deciding, "fail")[0].claim.id == "toy.b"
    (ans,) = answers(load_all(tmp_path / "claims.yaml").questions, sts)
    assert ans.answer == "mixed" and ans.answer_for("paper_value") is None
    assert "directions: **mixed**" in md and "for: [`toy.a`]" in md and "against: [`toy.b`]" in md
    # three readings of the same runs are one set of evidence, not three
    assert independent_run_sets(outs) == 1


@pytest.mark.unit
def test_a_difference_in_differences_subtracts_the_same_contrast_without_the_effect(tmp_path):
    did = row("toy.did", kind="control", a="{variant: batch}", b="{variant: none}",
              extra="  baseline: {a: {variant: layer}, b: {variant: none}}\n")
    results = {"batch": [0.9, 0.91, 0.92], "none": [0.8, 0.81, 0.79], "layer": [0.85, 0.86, 0.84]}
    (o,) = outcomes(tmp_path, did, results)[1]
    assert o.verdict == "supports the claim" and o.estimate[0] == pytest.approx(0.06)  # (0.91-0.8) - (0.85-0.8)
    results["layer"] = [0.95, 0.96, 0.97]
    assert outcomes(tmp_path, did, results)[1][0].verdict == "undercuts the claim"


@pytest.mark.unit
def test_the_pages_answer_first_and_are_deterministic(tmp_path):
    pages, _ = outcomes(tmp_path, BN_HIGHER, HIGH)
    markdown, figure = pages["REPORT.md"], pages["report/toy_fig.md"]
    assert markdown.index("## Answers") < markdown.index("## How to read it") < markdown.index("## Figures")
    assert "[Does BN help?](#q-q) | directions: **supported** | for: [`toy.higher`](report/toy_fig.md) (toy) " \
           "difference 0.11 [0.067, 0.153], n=3 | 1 / 0 / 0 / 0 / 0 | 1 | more seeds. |" in markdown
    assert "- [A toy figure](report/toy_fig.md): 1 rows, 1 pass" in markdown
    assert "(sign only: no margin)" in figure
    assert "*Figure not drawn yet (`toy/fig_toy.png`)" in figure  # no image yet: said, not a broken link
    assert "Code: commit `abcdef12` (clean tree). Data: official data." in figure
    (tmp_path / "results" / "toy" / "fig_toy.png").write_bytes(b"png")
    again = build(tmp_path / "results", tmp_path / "claims.yaml")[0]
    assert "![A toy figure](../toy/fig_toy.png)" in again["report/toy_fig.md"]  # relative to results/report/
    assert build(tmp_path / "results", tmp_path / "claims.yaml")[0] == again  # no dates, stable order


@pytest.mark.unit
@pytest.mark.parametrize("edit, message", [
    (("reduce: final", "reduce: finally"), "reduce.how='finally'"),
    (("  claim: BN ends higher.", "  claim: BN ends higher.\n  colour: red"), "unknown key(s) ['colour']"),
    (("figure: toy_fig", "figure: nope"), "figure 'nope' is not among the figures"),
    (("  b: {variant: none}\n", ""), "needs a second side 'b'"),
    (("stat: difference, at_least: 0", "stat: differ, at_least: 0"), "test.stat='differ'"),
    (("stat: difference, at_least: 0", "stat: difference"), "needs at_least, at_most, or near"),
    (("  kind: direction\n", ""), "missing key(s) ['kind']"),
    (("kind: direction", "kind: evidence"), "kind='evidence'"),
    (("question: q", "question: r"), "question='r' is not among the questions"),
])
def test_a_malformed_claim_is_an_error_naming_it(tmp_path, edit, message):
    claims = write_claims(tmp_path / "claims.yaml", BN_HIGHER.replace(*edit))
    with pytest.raises(ClaimsError, match="toy.higher") as e:
        load(claims)
    assert message in str(e.value)


@pytest.mark.unit
def test_duplicate_ids_unused_questions_and_ambiguous_runs_are_errors(tmp_path):
    with pytest.raises(ClaimsError, match="'toy.higher' appears twice"):
        load(write_claims(tmp_path / "claims.yaml", BN_HIGHER + BN_HIGHER))
    extra = HEAD.replace("figures:", "  - id: unused\n    question: Nobody asks?\n    changes: a row.\nfigures:")
    with pytest.raises(ClaimsError, match=r"\['unused'\] have no claim rows"):
        load(write_claims(tmp_path / "claims.yaml", BN_HIGHER, head=extra))
    with pytest.raises(ClaimsError, match="several per seed"):
        outcomes(tmp_path, BN_HIGHER.replace("a: {variant: batch}", "a: {lr: 0.1}"), HIGH)


@pytest.mark.unit
def test_reductions():
    s = pd.Series([1.0, 3.0, 2.0, 6.0], index=[0, 10, 20, 30])
    assert reduce(s, "final") == 6.0 and reduce(s, "final", window=2) == 4.0
    assert reduce(s, "at_step", step=25) == 2.0 and np.isnan(reduce(s, "at_step", step=40))
    assert (reduce(s, "max"), reduce(s, "median"), reduce(s, "range"), reduce(s, "change")) == (6.0, 2.5, 5.0, 5.0)
    assert reduce(s, "step_change") == 2.0 and reduce(s, "step_change", stat="max") == 4.0
    assert reduce(s, "steps_to", threshold=2.5) == 10.0 and reduce(s, "steps_to", threshold=7) == np.inf
    assert reduce(s, "steps_to", threshold=1.5, below=True) == 0.0
    assert reduce(s, "max", **{"from": 5, "to": 25}) == 3.0


@pytest.mark.e2e
def test_the_cli_exits_2_with_one_line_on_a_bad_claims_file(tmp_path):
    bad = write_claims(tmp_path / "claims.yaml", BN_HIGHER.replace("  kind: direction\n", ""))
    out = run_cli("--claims", str(bad), "--results", str(tmp_path), script="report.py")
    assert out.returncode == 2 and out.stderr.startswith("report: claim 'toy.higher'")
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "REPORT.md").exists()


@pytest.mark.unit
def test_the_claims_file_covers_every_figure_with_both_readings():
    c = load_all(ROOT / "configs" / "claims.yaml")
    assert {f.id for f in c.figures} == {x.figure.id for x in c.claims}  # every figure has claims
    readings = {}
    for x in c.claims:
        readings.setdefault(x.claim, set()).add(x.reduce["how"])
    for statement, hows in readings.items():  # a smoothness claim is read on the spikes and on typical steps
        if "β-smoothness is lower" in statement or "gradient is more predictive" in statement:
            assert {"max", "median"} <= hows, statement
    assert all(x.seeds >= 3 for x in c.claims)
    assert {x.kind for x in c.claims} == {"paper_value", "direction", "control", "sanity", "fitted"}


@pytest.fixture(scope="module")
def committed():
    return build(ROOT / "results", ROOT / "configs" / "claims.yaml", draw=False)  # never writes into results/


@pytest.mark.integration
def test_every_claim_has_its_data_in_the_committed_results(committed):
    """A metric misspelt in claims.yaml, or a result folder not committed, shows up here rather than as a silent
    'not run' in the committed report."""
    missing = [(o.claim.id, o.reason) for o in committed[1] if o.verdict == "not run"]
    assert not missing


@pytest.mark.integration
def test_the_vgg_probe_rows_on_the_600_step_runs_are_not_testable(committed):
    """There the standard network sits on its chance plateau (median training loss ≈2.26-2.30), so neither a pass
    nor a fail of a comparison with it says anything about the papers' claims."""
    by_id = {o.claim.id: o for o in committed[1]}
    for cid in ("ics.vgg.l2.lr01.layer5", "ics.vgg.cos.lr001.layer10", "landscape.vgg.gpred.typical",
                "landscape.vgg.loss.spikes", "lp.vgg.landscape.l1.typical"):
        assert by_id[cid].verdict == "not testable", cid


@pytest.mark.e2e
def test_the_committed_report_is_what_the_committed_results_give(committed):
    status = subprocess.run(["git", "status", "--porcelain", "--", "results", "configs/claims.yaml"], cwd=ROOT,
                            capture_output=True, text=True)
    if status.returncode != 0 or status.stdout.strip():
        # `make mnist-bn` rewrites results/mnist_bn with the user's own runs: then there is no committed state to check
        pytest.skip("results/ or configs/claims.yaml differ from the commit (or no git): nothing committed to compare")
    for name, text in committed[0].items():
        assert (ROOT / "results" / name).read_text() == text, f"run `make report` and commit results/{name}"
    pages = {p.relative_to(ROOT / "results").as_posix() for p in (ROOT / "results" / "report").glob("*.md")}
    assert pages == set(committed[0]) - {"REPORT.md"}, "a stale figure page: run `make report`"


@pytest.mark.integration
def test_the_opening_fits_two_screens_and_the_html_is_self_contained(committed, tmp_path):
    from bnrepro.report.html import to_html

    opening = committed[0]["REPORT.md"].split("## What the counts stand on")[0].split("### What later work found")[0]
    assert len(opening.splitlines()) <= 40  # the title, the hypotheses and the questions table: two screens
    assert opening.index("## The article's three hypotheses") < opening.index("## Answers")
    pages, _ = outcomes(tmp_path, BN_HIGHER, HIGH)
    (tmp_path / "results" / "toy" / "fig_toy.png").write_bytes(b"png")
    pages = build(tmp_path / "results", tmp_path / "claims.yaml")[0]
    page = to_html(pages, tmp_path / "results")
    assert page == to_html(pages, tmp_path / "results")
    assert 'src="data:image/png;base64,cG5n"' in page and "http" not in page.replace("<!DOCTYPE html>", "")
    assert '<a href="#page-toy_fig">A toy figure</a>' in page  # page links become links within the one file


@pytest.mark.unit
def test_spans_across_a_run_column_and_correlations_across_runs(tmp_path):
    from bnrepro.report.series import Stored, span_across
    from bnrepro.report.stats import spearman_interval

    rows, runs = [], []
    for seed in range(3):
        for variant, good in (("batch", (0.01, 0.1, 1.0, 10.0)), ("none", (0.1, 1.0))):
            for lr in (0.01, 0.1, 1.0, 10.0):
                run_id = f"{variant}-{lr}-{seed}"
                rows.append((100, "test", "acc", 0.97 if lr in good else 0.5, run_id))
                runs.append({"run_id": run_id, "variant": variant, "lr": lr, "seed": seed})
    stored = Stored(pd.DataFrame(rows, columns=["step", "split", "metric", "value", "run_id"]), pd.DataFrame(runs))
    span = {v: span_across(stored, stored.runs[stored.runs.variant == v], "test/acc", {"how": "final"}, "lr", 0.9)
            for v in ("batch", "none")}
    assert span == {"batch": {0: 3.0, 1: 3.0, 2: 3.0}, "none": {0: 1.0, 1: 1.0, 2: 1.0}}  # decades
    rho, lo, hi = spearman_interval(np.arange(10.0), np.arange(10.0) ** 3)
    assert rho == pytest.approx(1.0) and hi <= 1.0
    rho, lo, hi = spearman_interval(np.arange(20.0), -np.arange(20.0) ** 2)
    assert rho == pytest.approx(-1.0) and hi < 0
    assert spearman_interval([1.0, 2.0, 3.0], [3.0, 1.0, 2.0])[1:] == (-1.0, 1.0)  # 3 pairs say nothing
    # Tied values share their mean rank: [1, 2, 2, 3, 4] against a strictly rising series is below 1 (0.975)
    x, y = [1.0, 2.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spearman_interval(x, y)[0] == pytest.approx(scipy_stats.spearmanr(x, y).statistic, rel=1e-12)
    assert round(spearman_interval(x, y)[0], 3) == 0.975
    assert spearman_interval([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])[0] == 0.0  # a constant side: no order


@pytest.mark.unit
def test_drift_and_the_landscape_readings_derived_from_stored_values():
    from bnrepro.report.series import Stored

    assert reduce(pd.Series([1.0, 1.5, 0.2, 1.1]), "drift") == pytest.approx(0.8)
    rows = []
    for step, g, d05, d10 in ((10, 2.0, 1.0, 4.0), (20, 1.0, 1.0, 1.0)):  # β attained at η 0.1, then at 0.05
        rows += [(step, "probe", "landscape/gnorm", g, "r"), (step, "probe", "landscape/eta/0.05/gpred", d05, "r"),
                 (step, "probe", "landscape/eta/0.1/gpred", d10, "r"), (step, "probe", "landscape/loss_min", 2.0, "r"),
                 (step, "probe", "landscape/loss_max", 2.0 + g, "r")]
    stored = Stored(pd.DataFrame(rows, columns=["step", "split", "metric", "value", "run_id"]),
                    pd.DataFrame({"run_id": ["r"], "seed": [0]}))
    assert stored.series("r", "landscape/beta_eta").tolist() == [0.1, 0.05]
    assert stored.series("r", "landscape/eta/0.05/rel").tolist() == [0.5, 1.0]
    assert stored.series("r", "landscape/loss_range_rel").tolist() == [1.0, 0.5]
    assert stored.series("r", "landscape/nothing").empty


@pytest.mark.unit
def test_a_bound_decides_only_if_it_still_decides_with_the_censored_runs_far_past_the_horizon(tmp_path):
    """A t-interval is not monotone in one seed's value: moving one censored seed far up widens the interval. The
    row below passes with none's censored seed at its last step (100) and not with it at 10× (1,000): none / BN is
    90 / 50 in four seeds and ≥ 100 / 50 in the fifth."""
    faster = row("toy.faster", test="{stat: ratio, at_least: 1.5}", a="{variant: none}", b="{variant: batch}") \
        .replace("reduce: final", "reduce: {how: steps_to, threshold: 0.45}")
    fragile = {"batch": [0.9] * 5, "none": [0.5] * 4 + [0.4]}  # none's fifth seed never gets to 0.45
    (o,) = outcomes(tmp_path, faster, fragile, seeds=5)[1]
    assert o.verdict == "inconclusive" and "10× as many steps" in o.reason and o.censored == 1
    assert o.estimate[1] > 1.5  # read at the last step alone, it would pass
    robust = {"batch": [0.9] * 5, "none": [0.4] * 5}  # every none seed censored: ≥ 2 at 1×, ≥ 20 at 10×
    assert outcomes(tmp_path, faster, robust, seeds=5)[1][0].verdict == "reproduced"


@pytest.mark.unit
def test_the_strongest_evidence_is_a_tight_two_sided_uncensored_row(tmp_path):
    """A ratio whose log-scale interval spans decades loses to a tight one, though its linear margin is larger; a
    zero-width row against a constant and a censored bound are never chosen while such a row decides."""
    wide = row("toy.wide", test="{stat: ratio, at_most: 1}").replace("metric: test/acc", "metric: landscape/beta") \
        .replace("reduce: final", "reduce: median")
    tight = row("toy.tight", test="{stat: ratio, at_most: 1}", a="{variant: layer}").replace(
        "metric: test/acc", "metric: landscape/beta").replace("reduce: final", "reduce: median")
    constant = row("toy.constant", test="{stat: value, at_least: 0.5}", b="null", a="{variant: flat}") \
        .replace("metric: test/acc", "metric: landscape/beta").replace("reduce: final", "reduce: median")
    censored = row("toy.censored", test="{stat: ratio, at_least: 1.1}", a="{variant: none}", b="{variant: batch}") \
        .replace("reduce: final", "reduce: {how: steps_to, threshold: 0.45}")
    probe = {"batch": [10 ** e for e in (-1.5, -4, -6.5, -2.75, -5.25)], "none": [1.0] * 5,
             "layer": [0.3, 0.31, 0.29, 0.3, 0.3], "flat": [1.0] * 5}
    results = {"batch": [0.9] * 5, "none": [0.4] * 5, "layer": [0.9] * 5, "flat": [0.9] * 5}
    _, outs = outcomes(tmp_path, wide + tight + constant + censored, results, probe=probe, seeds=5)
    by = {o.claim.id: o for o in outs}
    assert all(o.result == "pass" for o in outs), {o.claim.id: o.reason for o in outs}
    lo, hi = by["toy.wide"].estimate[1:]
    assert np.log10(hi / lo) > 4  # the interval spans more than four decades
    assert (1 - hi) > (1 - by["toy.tight"].estimate[2])  # on a linear scale the wide row looks farther from 1
    best, strong = strongest(outs, "pass")
    assert best.claim.id == "toy.tight" and strong
    best, strong = strongest([by["toy.constant"], by["toy.censored"]], "pass")
    assert not strong  # only weak rows decide: the best of them, said to be weak


@pytest.mark.unit
def test_p_values_agree_with_the_interval_and_the_corrections_keep_what_they_should():
    values = [0.9, 1.1, 1.3, 1.2]
    est, lo, hi = interval(values)
    assert p_value(values, lo) == pytest.approx(0.05, abs=1e-9) and p_value(values, hi) == pytest.approx(0.05)
    assert p_value([2.0, 4.0, 8.0], 2.0 ** 3, log=True) == pytest.approx(p_value([1.0, 2.0, 3.0], 3.0))
    assert holm([0.01, 0.04, 0.03]) == [True, False, False]            # 0.01 ≤ 0.05/3; 0.03 > 0.05/2
    assert benjamini_hochberg([0.01, 0.04, 0.03]) == [True, True, True]  # 0.04 ≤ 0.05 · 3/3
    assert benjamini_hochberg([0.01, 0.2, 0.06]) == [True, False, False]


@pytest.mark.unit
def test_beta_is_read_against_the_edge_of_stability_on_a_quadratic_of_known_curvature():
    """L(w) = ½ h w² has curvature h everywhere: the landscape probe's β is h, and β / (2/lr) is h·lr/2, 1 exactly
    at lr = 2/h, where gradient descent on it stops converging (|1 − lr·h| = 1)."""
    import torch

    from bnrepro.probes import LandscapeProbe
    from bnrepro.report.series import Stored

    h = 40.0
    model = torch.nn.Linear(1, 1, bias=False).double()
    with torch.no_grad():
        model.weight.fill_(0.7)
    x = torch.ones(1, 1, dtype=torch.float64)
    loss = lambda out, _y: 0.5 * h * out.pow(2).sum()  # noqa: E731
    loss(model(x), None).backward()
    beta = LandscapeProbe(model, loss, [0.001, 0.01, 0.02], batched=False)(x, None)["landscape/beta"]
    assert beta == pytest.approx(h, rel=1e-9)
    runs = pd.DataFrame({"run_id": ["slow", "edge"], "seed": [0, 0], "lr": [0.01, 2 / h]})
    rows = [(0, "probe", "landscape/beta", beta, r) for r in runs["run_id"]]
    stored = Stored(pd.DataFrame(rows, columns=["step", "split", "metric", "value", "run_id"]), runs)
    assert "landscape/beta_eos" in stored.metric_names()
    assert stored.series("slow", "landscape/beta_eos").tolist() == pytest.approx([h * 0.01 / 2])
    assert stored.series("edge", "landscape/beta_eos").tolist() == pytest.approx([1.0])


@pytest.mark.unit
def test_extensions_are_judged_apart_and_never_counted_as_reproductions(tmp_path):
    ours = row("toy.ours", claim="BN ends higher, by our reading.").replace(
        "source: article, a toy claim", "source: extension (ours)")
    pages, outs = outcomes(tmp_path, BN_HIGHER + ours, HIGH)
    by = {o.claim.id: o for o in outs}
    assert by["toy.higher"].verdict == "reproduced" and by["toy.ours"].verdict == "holds (extension)"
    (ans,) = answers(load_all(tmp_path / "claims.yaml").questions, statements(outs))
    assert [s.text for s in ans.statements] == ["BN ends higher."]
    assert [s.text for s in ans.extensions] == ["BN ends higher, by our reading."]
    md = pages["REPORT.md"]
    assert "1 statements of the sources: 1 holds" in md and "1 extensions: 1 holds" in md


@pytest.mark.unit
def test_a_moment_row_of_noisy_bn_read_under_fresh_noise_is_refused_as_evidence(tmp_path):
    moments = row("toy.moments", a="{variant: noisy_batch}", test="{stat: ratio, at_least: 2}").replace(
        "metric: test/acc", "metric: act/layer2/unit/dmean").replace("reduce: final", "reduce: median")
    with pytest.raises(ClaimsError, match="measures the noise the probe injects"):
        load(write_claims(tmp_path / "claims.yaml", moments))
    load(write_claims(tmp_path / "claims.yaml", moments.replace("kind: direction", "kind: sanity")))
    load(write_claims(tmp_path / "claims.yaml", moments.replace("unit/dmean", "unit/dmean_same_noise")))


@pytest.mark.unit
def test_the_forest_plot_is_drawn_per_question_and_the_same_rows_give_the_same_bytes(tmp_path):
    pages, _ = outcomes(tmp_path, BN_HIGHER + row("toy.b", test="{stat: difference, at_least: 0.5}"), HIGH)
    png = tmp_path / "results" / "report" / "forest_q.png"
    assert png.is_file() and "![Forest plot: Does BN help?](report/forest_q.png)" in pages["REPORT.md"]
    first = png.read_bytes()
    import seaborn as sns

    sns.set_theme(style="whitegrid")  # a figure module's theme, set earlier in the same process, changes nothing
    try:
        assert build(tmp_path / "results", tmp_path / "claims.yaml")[0] == pages
    finally:
        sns.reset_orig()
    assert png.read_bytes() == first
    assert build(tmp_path / "results", tmp_path / "claims.yaml", draw=False)[0] == pages  # the same pages, undrawn


@pytest.mark.unit
def test_an_untested_entry_that_a_figure_now_tests_is_refused(tmp_path):
    entry = ("untested:\n  - source: article\n    claim: BN helps somewhere else.\n    why: no run yet.\n"
             "    needs: {needs}\n")
    path = write_claims(tmp_path / "claims.yaml", BN_HIGHER)
    path.write_text(path.read_text() + entry.format(needs="toy_elsewhere"))
    assert [u.needs for u in load_all(path).untested] == ["toy_elsewhere"]
    path.write_text(path.read_text().replace("needs: toy_elsewhere", "needs: toy"))
    with pytest.raises(ClaimsError, match="figure 'toy_fig' reads results/toy/ now, so it is tested"):
        load_all(path)


@pytest.mark.unit
def test_a_question_of_extensions_only_is_answered_in_the_later_work_section(tmp_path):
    head = HEAD.replace("figures:", """  - id: later
    question: Does later work's mechanism hold?
    changes: more seeds.
figures:""")
    later = row("toy.later", claim="A later paper's statement.").replace("question: q", "question: later").replace(
        "source: article, a toy claim", "source: Someone et al. 2021")
    path = write_claims(tmp_path / "claims.yaml", BN_HIGHER + later, head=head)
    write_results(tmp_path / "results" / "toy", HIGH)
    md = build(tmp_path / "results", path)[0]["REPORT.md"]
    top, section = md.split("### What later work found")
    assert "**1 questions;" in top and "[Does later work's mechanism hold?](#q-later)" not in top.split("## Answers")[1]
    assert "[Does later work's mechanism hold?](#q-later) | directions: **supported**" in section


@pytest.mark.unit
def test_best_over_a_run_column_takes_each_seeds_best_run():
    from bnrepro.report.series import Stored, best_across

    rows, runs = [], []
    for seed in range(2):
        for lr, acc in ((0.1, 0.90), (1.0, 0.97 + seed / 100), (10.0, float("nan"))):  # lr 10 diverged: no value
            run_id = f"none-{lr}-{seed}"
            rows.append((100, "test", "acc", acc, run_id))
            runs.append({"run_id": run_id, "variant": "none", "lr": lr, "seed": seed})
    stored = Stored(pd.DataFrame(rows, columns=["step", "split", "metric", "value", "run_id"]), pd.DataFrame(runs))
    best = best_across(stored, stored.runs, "test/acc", {"how": "final"}, "lr")
    assert best == pytest.approx({0: 0.97, 1: 0.98})


@pytest.mark.unit
def test_spread_over_a_run_column_is_the_decades_its_values_span():
    """Effective learning rates 0.01 and 0.1 at lr 0.01 and 1 span one decade; a run without a positive value
    leaves its seed out. absmax reads a signed series by its largest magnitude."""
    from bnrepro.report.series import Stored, reduce, spread_across

    rows, runs = [], []
    for seed, last in ((0, 0.1), (1, -1.0)):
        for lr, eff in ((0.01, 0.01), (1.0, last)):
            run_id = f"batch-{lr}-{seed}"
            rows.append((100, "probe", "weights/layer2/eff_lr", eff, run_id))
            runs.append({"run_id": run_id, "variant": "batch", "lr": lr, "seed": seed})
    stored = Stored(pd.DataFrame(rows, columns=["step", "split", "metric", "value", "run_id"]), pd.DataFrame(runs))
    assert spread_across(stored, stored.runs, "weights/layer2/eff_lr", {"how": "final"}, "lr") == \
        pytest.approx({0: 1.0})
    assert reduce(pd.Series([1e-7, -3e-7, 2e-7]), "absmax") == pytest.approx(3e-7)
