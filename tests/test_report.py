"""The report generator on small stored-metrics fixtures the tests write: verdicts follow the numbers, missing data
is "not run", too few seeds or disagreeing seeds are "inconclusive", and a malformed claims file is a clear error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bnrepro.report import ClaimsError, build, load
from bnrepro.report.evaluate import reduce
from tests.conftest import ROOT

FIGURE = """\
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
                  probe: dict[str, list[float]] | None = None) -> None:
    """results/<name>/metrics.parquet and runs.csv as `collect` writes them: per variant, one run per seed whose test
    accuracy climbs linearly to final_acc[variant][seed], and optionally a probe metric at that constant level."""
    rows, runs = [], []
    for variant, finals in final_acc.items():
        for seed, final in enumerate(finals):
            run_id = f"sweep/{variant}-{seed}"
            for step in range(0, steps + 1, 10):
                rows.append((step, "test", "acc", final * step / steps, variant, seed, run_id))
                if probe:
                    rows.append((step, "probe", "landscape/beta", probe[variant][seed], variant, seed, run_id))
            runs.append({"run_id": run_id, "experiment": "toy", "variant": variant, "lr": 0.1, "seed": seed,
                         "status": "completed", "data_official": True, "git_commit": "abcdef1234567890",
                         "git_dirty": False})
    folder.mkdir(parents=True, exist_ok=True)
    m = pd.DataFrame(rows, columns=["step", "split", "metric", "value", "variant", "seed", "run_id"])
    m.assign(experiment="toy", lr=0.1).to_parquet(folder / "metrics.parquet", index=False)
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False)


def write_claims(path: Path, claims: str, seeds: int = 3) -> Path:
    path.write_text(f"seeds: {seeds}\n" + FIGURE + "claims:\n" + textwrap.indent(textwrap.dedent(claims), "  "))
    return path


BN_HIGHER = """\
- id: toy.higher
  figure: toy_fig
  source: article, a toy claim
  claim: BN ends higher.
  reading: final test accuracy
  metric: test/acc
  reduce: final
  a: {variant: batch}
  b: {variant: none}
  test: {stat: difference, at_least: 0}
"""


def verdicts(results: Path, claims: Path) -> dict[str, str]:
    return {o.claim.id: o.verdict for o in build(results, claims)[1]}


def test_the_verdict_follows_the_numbers(tmp_path):
    claims = write_claims(tmp_path / "claims.yaml", BN_HIGHER)
    write_results(tmp_path / "results" / "toy", {"batch": [0.9, 0.91, 0.92], "none": [0.8, 0.81, 0.79]})
    assert verdicts(tmp_path / "results", claims) == {"toy.higher": "reproduced"}
    write_results(tmp_path / "results" / "toy", {"batch": [0.7, 0.71, 0.72], "none": [0.8, 0.81, 0.79]})
    assert verdicts(tmp_path / "results", claims) == {"toy.higher": "not reproduced"}


def test_disagreeing_seeds_and_a_band_across_the_threshold_are_inconclusive(tmp_path):
    claims = write_claims(tmp_path / "claims.yaml", BN_HIGHER)
    write_results(tmp_path / "results" / "toy", {"batch": [0.9, 0.7, 0.92], "none": [0.8, 0.81, 0.79]})
    (o,) = build(tmp_path / "results", claims)[1]
    assert (o.verdict, o.reason) == ("inconclusive", "seeds disagree: 2 of 3 pass")
    # every seed passes, two barely: mean - sd of the differences dips below 0
    write_results(tmp_path / "results" / "toy", {"batch": [0.501, 0.501, 0.8], "none": [0.5, 0.5, 0.5]})
    (o,) = build(tmp_path / "results", claims)[1]
    assert o.verdict == "inconclusive" and "overlaps the threshold" in o.reason


def test_fewer_seeds_than_required_is_inconclusive(tmp_path):
    claims = write_claims(tmp_path / "claims.yaml", BN_HIGHER)
    write_results(tmp_path / "results" / "toy", {"batch": [0.9], "none": [0.8]})
    (o,) = build(tmp_path / "results", claims)[1]
    assert (o.verdict, o.reason) == ("inconclusive", "1 seed(s), 3 required")
    claims = write_claims(tmp_path / "claims.yaml", BN_HIGHER, seeds=1)
    assert verdicts(tmp_path / "results", claims) == {"toy.higher": "reproduced"}


def test_missing_results_or_metric_is_not_run_with_its_command(tmp_path):
    claims = write_claims(tmp_path / "claims.yaml", BN_HIGHER + BN_HIGHER.replace("toy.higher", "toy.probe").replace(
        "test/acc", "landscape/gpred_max"))
    markdown, outcomes = build(tmp_path / "results", claims)  # no results folder at all
    assert [o.verdict for o in outcomes] == ["not run", "not run"]
    assert "`make toy seeds=3`" in markdown and "2 not run" in markdown
    write_results(tmp_path / "results" / "toy", {"batch": [0.9, 0.91, 0.92], "none": [0.8, 0.81, 0.79]})
    assert verdicts(tmp_path / "results", claims) == {"toy.higher": "reproduced", "toy.probe": "not run"}


def test_ratios_steps_to_and_paper_tolerances(tmp_path):
    claims = write_claims(tmp_path / "claims.yaml", """\
    - id: toy.faster
      figure: toy_fig
      source: Ioffe, toy
      claim: BN reaches 0.85 sooner.
      reading: steps to 0.85
      metric: test/acc
      reduce: {how: steps_to, threshold: 0.85}
      a: {variant: none}
      b: {variant: batch}
      test: {stat: ratio, at_least: 2}
    - id: toy.paper
      figure: toy_fig
      source: Santurkar, toy
      claim: BN's beta is near 20.
      reading: median, within a factor 1.25
      metric: landscape/beta
      reduce: median
      a: {variant: batch}
      test: {stat: value, near: 20, factor: 1.25}
    """)
    # none never reaches 0.85: infinitely many steps, so the ratio passes without a finite band
    write_results(tmp_path / "results" / "toy", {"batch": [0.9, 0.95, 1.0], "none": [0.8, 0.8, 0.8]},
                  probe={"batch": [19.0, 21.0, 22.0], "none": [5.0, 50.0, 9.0]})
    assert verdicts(tmp_path / "results", claims) == {"toy.faster": "reproduced", "toy.paper": "reproduced"}
    write_results(tmp_path / "results" / "toy", {"batch": [0.9, 0.95, 1.0], "none": [0.9, 0.95, 1.0]},
                  probe={"batch": [40.0, 41.0, 45.0], "none": [5.0, 50.0, 9.0]})
    assert verdicts(tmp_path / "results", claims) == {"toy.faster": "not reproduced", "toy.paper": "not reproduced"}


def test_the_page_has_counts_summary_figure_and_provenance(tmp_path):
    claims = write_claims(tmp_path / "claims.yaml", BN_HIGHER)
    write_results(tmp_path / "results" / "toy", {"batch": [0.9, 0.91, 0.92], "none": [0.8, 0.81, 0.79]})
    markdown, _ = build(tmp_path / "results", claims)
    assert "**1 claims: 1 reproduced, 0 not reproduced, 0 inconclusive, 0 not run.**" in markdown
    assert "| [toy.higher](#fig-toy-fig) | BN ends higher." in markdown
    assert "*Figure not drawn yet (`toy/fig_toy.png`)" in markdown  # no image yet: said, not a broken link
    assert "Code: commit `abcdef12` (clean tree). Data: official." in markdown
    (tmp_path / "results" / "toy" / "fig_toy.png").write_bytes(b"png")
    again, _ = build(tmp_path / "results", claims)
    assert "![A toy figure](toy/fig_toy.png)" in again  # relative to results/, where REPORT.md lives
    assert build(tmp_path / "results", claims)[0] == again  # deterministic: no dates, stable order


@pytest.mark.parametrize("edit, message", [
    (("reduce: final", "reduce: finally"), "reduce.how='finally'"),
    (("  claim: BN ends higher.", "  claim: BN ends higher.\n  colour: red"), "unknown key(s) ['colour']"),
    (("figure: toy_fig", "figure: nope"), "figure 'nope' is not among the figures"),
    (("  b: {variant: none}\n", ""), "needs a second side 'b'"),
    (("stat: difference, at_least: 0", "stat: differ, at_least: 0"), "test.stat='differ'"),
    (("stat: difference, at_least: 0", "stat: difference"), "needs at_least, at_most, or near"),
])
def test_a_malformed_claim_is_an_error_naming_it(tmp_path, edit, message):
    claims = write_claims(tmp_path / "claims.yaml", BN_HIGHER.replace(*edit))
    with pytest.raises(ClaimsError, match="toy.higher") as e:
        load(claims)
    assert message in str(e.value)


def test_duplicate_ids_and_ambiguous_runs_are_errors(tmp_path):
    with pytest.raises(ClaimsError, match="'toy.higher' appears twice"):
        load(write_claims(tmp_path / "claims.yaml", BN_HIGHER + BN_HIGHER))
    claims = write_claims(tmp_path / "claims.yaml", BN_HIGHER.replace("a: {variant: batch}", "a: {lr: 0.1}"))
    write_results(tmp_path / "results" / "toy", {"batch": [0.9, 0.91, 0.92], "none": [0.8, 0.81, 0.79]})
    with pytest.raises(ClaimsError, match="several per seed"):
        build(tmp_path / "results", claims)


def test_reductions():
    s = pd.Series([1.0, 3.0, 2.0, 6.0], index=[0, 10, 20, 30])
    assert reduce(s, "final") == 6.0 and reduce(s, "final", window=2) == 4.0
    assert reduce(s, "at_step", step=25) == 2.0 and np.isnan(reduce(s, "at_step", step=40))
    assert (reduce(s, "max"), reduce(s, "median"), reduce(s, "range"), reduce(s, "change")) == (6.0, 2.5, 5.0, 5.0)
    assert reduce(s, "step_change") == 2.0 and reduce(s, "step_change", stat="max") == 4.0
    assert reduce(s, "steps_to", threshold=2.5) == 10.0 and reduce(s, "steps_to", threshold=7) == np.inf
    assert reduce(s, "steps_to", threshold=1.5, below=True) == 0.0
    assert reduce(s, "max", **{"from": 5, "to": 25}) == 3.0


def test_the_cli_exits_2_on_a_bad_claims_file(tmp_path):
    bad = write_claims(tmp_path / "claims.yaml", BN_HIGHER.replace("reduce: final", "reduce: finally"))
    out = subprocess.run([sys.executable, str(ROOT / "experiments" / "report.py"), "--claims", str(bad),
                          "--results", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("report: claim 'toy.higher'") and "Traceback" not in out.stderr


def test_the_claims_file_covers_every_figure_with_both_readings():
    figures, claims = load(ROOT / "configs" / "claims.yaml")
    assert len(claims) >= 30
    assert {f.id for f in figures} == {c.figure.id for c in claims}  # every figure has claims
    readings = {}
    for c in claims:
        readings.setdefault(c.claim, set()).add(c.reduce["how"])
    # a smoothness claim is read on the spikes and on typical steps
    for statement, hows in readings.items():
        if "β-smoothness is lower" in statement or "gradient is more predictive" in statement:
            assert {"max", "median"} <= hows, statement
    assert all(c.seeds >= 3 for c in claims)


def test_every_claim_has_its_data_in_the_committed_results():
    """A metric misspelt in claims.yaml, or a result folder not committed, shows up here rather than as a silent
    'not run' in the committed report."""
    _, outcomes = build(ROOT / "results", ROOT / "configs" / "claims.yaml")
    missing = [(o.claim.id, o.reason) for o in outcomes if o.verdict == "not run"]
    assert not missing


def test_the_committed_report_is_what_the_committed_results_give():
    status = subprocess.run(["git", "status", "--porcelain", "--", "results", "configs/claims.yaml"], cwd=ROOT,
                            capture_output=True, text=True)
    if status.returncode != 0 or status.stdout.strip():
        # `make mnist-bn` rewrites results/mnist_bn with the user's own runs: then there is no committed state to check
        pytest.skip("results/ or configs/claims.yaml differ from the commit (or no git): nothing committed to compare")
    markdown, _ = build(ROOT / "results", ROOT / "configs" / "claims.yaml")
    assert (ROOT / "results" / "REPORT.md").read_text() == markdown, "run `make report` and commit results/REPORT.md"
