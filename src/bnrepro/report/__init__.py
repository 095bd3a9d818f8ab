"""The report: every testable claim of the article and both papers, judged from stored metrics (no training).

    claims = load_all(claims_file)
    pages, outcomes = build(results_dir, claims_file)   # pages: {"REPORT.md": ..., "report/<figure>.md": ...}

build() also draws each question's forest plot into results_dir/report/ (forest.py) unless draw=False (the pages are
the same either way).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd

from bnrepro import metrics as metrics_store
from bnrepro.collect import diff_file
from bnrepro.report.claims import KINDS, Claim, Claims, ClaimsError, Figure, load, load_all
from bnrepro.report.evaluate import RESULTS, VERDICTS, Outcome, Stored, judge
from bnrepro.report.render import render
from bnrepro.report.rollup import answers, correct, statements

__all__ = ["KINDS", "RESULTS", "VERDICTS", "Claim", "Claims", "ClaimsError", "Figure", "Outcome", "Stored",
           "answers", "build", "judge", "load", "load_all", "read_results", "statements"]


def read_results(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A results folder's metrics and runs, or None when either file is missing (its claims are then "not run")."""
    metrics_file, runs_file = Path(folder) / "metrics.parquet", Path(folder) / "runs.csv"
    if not (metrics_file.is_file() and runs_file.is_file()):
        return None
    return metrics_store.read_results(folder)


def check_metrics(claims: Claims, stored: dict[str, Stored | None]) -> None:
    """Every metric a row reads is one that some stored result records: a misspelt name is refused (ClaimsError,
    naming the row and the closest name) rather than judged "not run". Rows of results not yet made are checked
    against the names the others record."""
    known = set().union(*(s.metric_names() for s in stored.values() if s is not None))
    if not known:
        return
    for c in claims.claims:
        reads = [c.metric, c.minus, c.over, (c.x or {}).get("metric"), *(r.metric for r in c.requires)]
        for name in filter(None, reads):
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ClaimsError(f"{c.id}: metric {name!r} is recorded by no stored result{hint}")


def build(results_dir: Path, claims_file: Path, draw: bool = True) -> tuple[dict[str, str], list[Outcome]]:
    claims = load_all(claims_file)
    stored: dict[str, Stored | None] = {}
    for name in sorted({f.results for f in claims.figures}):
        found = read_results(Path(results_dir) / name)
        stored[name] = Stored(*found) if found else None
    check_metrics(claims, stored)
    outcomes = [judge(c, stored[c.figure.results]) for c in claims.claims]
    correct(outcomes)
    runs = {name: s.runs.assign(diff_kept=[diff_file(Path(results_dir) / name, r).is_file() for r in s.runs["run_id"]])
            if s else None for name, s in stored.items()}
    images = {f.id: (Path(results_dir) / f.results / f.file).is_file() for f in claims.figures}
    from bnrepro.report.forest import draw_all, groups  # matplotlib only once a report is built

    ans = answers(claims.questions, statements(outcomes))
    forests = {a.question.id for a in ans if groups(a)}  # the pages link them whether or not this call draws them
    if draw:
        draw_all(ans, Path(results_dir) / "report")
    return render(claims, outcomes, runs, images, forests), outcomes
