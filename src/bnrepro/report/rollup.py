"""From rows to answers: the false discovery rate held within each question, one verdict per statement (all the
rows that read it), one answer per question (all the statements that bear on it), the strongest evidence, and how
many independent sets of runs and distinct measurements stand behind them.

Only paper values and directions decide; controls, sanity checks and fitted rows are shown beside them. A statement
holds when every deciding row passes, fails when every one fails, and is mixed when some pass and some fail (then
the report names the strongest row of each side); rows that are inconclusive or not testable do not decide, but a
statement with nothing else is that. A statement none of the sources makes (an extension) is judged the same way
and kept apart from the answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bnrepro.report.claims import Hypothesis, Question
from bnrepro.report.evaluate import Outcome
from bnrepro.report.stats import benjamini_hochberg, holm

STATEMENT_VERDICTS = ("holds", "fails", "mixed", "inconclusive", "not testable", "not run", "checks only")
ANSWERS = ("supported", "contradicted", "mixed", "inconclusive", "not testable here", "not run")


def families(outcomes: list[Outcome]) -> list[list[Outcome]]:
    """The rows one question decides at 95%, its reproductions and its extensions each a family."""
    out: dict[tuple[str, bool], list[Outcome]] = {}
    for o in outcomes:
        if o.claim.counts and o.result in ("pass", "fail"):
            out.setdefault((o.claim.question, o.claim.extension), []).append(o)
    return list(out.values())


def correct(outcomes: list[Outcome]) -> None:
    """The false discovery rate within each question held at 5% (Benjamini-Hochberg): a deciding row that does not
    survive becomes inconclusive, saying so. Not Holm's family-wise correction: a question's readings share their
    runs, and with 3 seeds and dozens of readings Holm would leave almost nothing decided, which says more about
    the seed count than about BN; the report counts what Holm would keep. Sanity checks, controls and fitted rows
    are not corrected: they decide nothing."""
    for family in families(outcomes):
        for o, kept in zip(family, benjamini_hochberg([o.p for o in family])):
            if not kept:
                o.reason = (f"{'passes' if o.result == 'pass' else 'fails'} at 95% alone (p = {o.p:.2g}), not with "
                            f"the false discovery rate over the question's {len(family)} deciding readings held at "
                            f"5% (Benjamini-Hochberg)")
                o.result = "inconclusive"


def holm_survivors(outcomes: list[Outcome]) -> int:
    """How many of the decided rows Holm's family-wise correction within each question would keep as well."""
    return sum(sum(holm([o.p for o in family])) for family in families(outcomes))


@dataclass
class Statement:
    text: str
    source: str
    question: str
    rows: list[Outcome] = field(default_factory=list)

    @property
    def extension(self) -> bool:
        return self.rows[0].claim.extension

    @property
    def sign_only(self) -> bool:
        """Holds on sign tests alone: every deciding row that passes has no margin."""
        return self.verdict == "holds" and all(o.claim.sign_only for o in self.deciding if o.result == "pass")

    @property
    def deciding(self) -> list[Outcome]:
        return [o for o in self.rows if o.claim.counts]

    @property
    def verdict(self) -> str:
        if not self.deciding:
            return "checks only"  # read only by controls, sanity checks or fitted rows: nothing to reproduce
        return _combine([o.result for o in self.deciding], ("holds", "fails", "mixed"))

    @property
    def kind(self) -> str:
        """paper_value when every deciding row compares with a paper's value, else direction."""
        return "paper_value" if all(o.claim.kind == "paper_value" for o in self.deciding) else "direction"

    @property
    def controls(self) -> list[Outcome]:
        return [o for o in self.rows if not o.claim.counts]


@dataclass
class Answer:
    question: Question
    statements: list[Statement]             # the sources' statements: they make the answer
    extensions: list[Statement] = field(default_factory=list)  # statements the sources do not make, shown apart

    @property
    def later(self) -> bool:
        """A question from later work: every statement bearing on it is an extension. Answered by those, apart."""
        return not self.statements and bool(self.extensions)

    def answer_for(self, kind: str | None = None) -> str | None:
        """The answer from the statements of one kind (directions, or the papers' values), or from all of them;
        None when there is no such statement. A later-work question's statements are its extensions."""
        by = {"holds": "pass", "fails": "fail", "mixed": "mixed"}
        results = [by.get(s.verdict, s.verdict) for s in (self.extensions if self.later else self.statements)
                   if s.deciding and (kind is None or s.kind == kind)]
        return _combine(results, ("supported", "contradicted", "mixed"), not_testable="not testable here") \
            if results else None

    @property
    def answer(self) -> str:
        return self.answer_for() or "not run"


def _combine(results: list[str], words: tuple[str, str, str], not_testable: str = "not testable") -> str:
    """pass/fail/mixed/inconclusive/not testable/not run per part, to one word for the whole."""
    decided = {r for r in results if r in ("pass", "fail", "mixed")}
    if decided == {"pass"}:
        return words[0]
    if decided == {"fail"}:
        return words[1]
    if decided:
        return words[2]
    for r, word in (("inconclusive", "inconclusive"), ("not testable", not_testable), ("not run", "not run")):
        if r in results:
            return word
    return "not run"


def statements(outcomes: list[Outcome]) -> list[Statement]:
    """Rows grouped by their statement (the claim text), in the order they first appear."""
    out: dict[tuple[str, str], Statement] = {}
    for o in outcomes:
        key = (o.claim.question, o.claim.claim)
        out.setdefault(key, Statement(o.claim.claim, o.claim.source, o.claim.question)).rows.append(o)
    return list(out.values())


def answers(questions: list[Question], stmts: list[Statement]) -> list[Answer]:
    return [Answer(q, [s for s in stmts if s.question == q.id and not s.extension],
                   [s for s in stmts if s.question == q.id and s.extension]) for q in questions]


def hypothesis_answer(h: Hypothesis, by_id: dict[str, Answer]) -> list[tuple[str, Answer, str]]:
    """(for/against, answer, what it says about the hypothesis) per question bearing on it, from the question's
    directions (its paper values where it has no direction): a question in `for` supports the hypothesis when
    supported and undercuts it when contradicted, one in `against` the reverse."""
    out = []
    for side, ids in (("for", h.supports), ("against", h.undercuts)):
        for q in ids:
            got = by_id[q].answer_for("direction") or by_id[q].answer
            toward = {"supported": "supports it", "contradicted": "undercuts it", "mixed": "mixed"}.get(got)
            if toward and side == "against":
                toward = {"supports it": "undercuts it", "undercuts it": "supports it"}.get(toward, toward)
            out.append((side, by_id[q], toward or "says nothing either way"))
    return out


def margin(o: Outcome) -> float:
    """How far the 95% interval lies past its threshold, in units of the interval's width, on the scale the
    interval was computed on (log for ratios): a pass's distance inside the passing range, a fail's outside it."""
    est, lo, hi = o.estimate
    t = o.claim.test
    f = (lambda x: math.log(x) if x > 0 else -math.inf) if o.log else (lambda x: x)
    with np.errstate(all="ignore"):
        if o.result == "fail":
            gap = max(f(t.lo) - f(hi) if np.isfinite(t.lo) else -math.inf,
                      f(lo) - f(t.hi) if np.isfinite(t.hi) else -math.inf)
        else:
            gap = min(f(lo) - f(t.lo) if np.isfinite(t.lo) else math.inf,
                      f(t.hi) - f(hi) if np.isfinite(t.hi) else math.inf)
    width = f(hi) - f(lo)
    return gap / width if width > 0 else math.inf


def strong(o: Outcome) -> bool:
    """Evidence that can stand as an answer's strongest: it compares two networks (not one against a constant),
    rests on no run that never reached its threshold, and has an interval of some width (a zero-width interval,
    every seed the same value, says the seeds did not vary, not that the effect is certain)."""
    _, lo, hi = o.estimate
    return o.claim.b is not None and o.censored == 0 and hi > lo


def strongest(rows: list[Outcome], result: str) -> tuple[Outcome | None, bool]:
    """The row of one result whose interval lies farthest past its threshold (margin), among the strong rows when
    there are any; and whether it is strong."""
    mine = [o for o in rows if o.result == result and o.estimate is not None]
    best = [o for o in mine if strong(o)] or mine
    return (max(best, key=margin), strong(max(best, key=margin))) if best else (None, False)


def measurements(rows: list[Outcome]) -> int:
    """Distinct measurements: rows whose per-seed statistic is the same numbers (one reading under two names, or
    tested against two thresholds) count once."""
    return len({(o.claim.figure.results, tuple(sorted((s, round(v, 12)) for s, v in o.stats.items())))
                for o in rows if o.stats})


def independent_run_sets(rows: list[Outcome]) -> int:
    """How many disjoint sets of runs the rows that pass or fail rest on: rows that share a run (the same seed and
    training curve, in whichever results folder) are one set, since readings of the same runs are not independent
    evidence; rows that decide nothing (inconclusive, not testable) add no set."""
    sets = [o.runs for o in rows if o.runs and o.result in ("pass", "fail")]
    groups: list[frozenset] = []
    for s in sets:
        touching = [g for g in groups if g & s]
        merged = frozenset().union(s, *touching)
        groups = [g for g in groups if not (g & s)] + [merged]
    return len(groups)
