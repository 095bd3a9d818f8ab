"""From rows to answers: one verdict per statement (all the rows that read it), one answer per question (all the
statements that bear on it), and how many independent sets of runs stand behind them.

Only rows that can reproduce (paper values and directions) decide; controls, sanity checks and fitted rows are
shown beside them. A statement holds when every deciding row passes, fails when every one fails, and is mixed when
some pass and some fail (then the report names the strongest row of each side); rows that are inconclusive or not
testable do not decide, but a statement with nothing else is that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bnrepro.report.claims import Question
from bnrepro.report.evaluate import Outcome

STATEMENT_VERDICTS = ("holds", "fails", "mixed", "inconclusive", "not testable", "not run", "checks only")
ANSWERS = ("supported", "contradicted", "mixed", "inconclusive", "not testable here", "not run")


@dataclass
class Statement:
    text: str
    source: str
    question: str
    rows: list[Outcome] = field(default_factory=list)

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
    statements: list[Statement]

    def answer_for(self, kind: str | None = None) -> str | None:
        """The answer from the statements of one kind (directions, or the papers' values), or from all of them;
        None when there is no such statement."""
        by = {"holds": "pass", "fails": "fail", "mixed": "mixed"}
        results = [by.get(s.verdict, s.verdict) for s in self.statements
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
    return [Answer(q, [s for s in stmts if s.question == q.id]) for q in questions]


def strongest(rows: list[Outcome], result: str) -> Outcome | None:
    """The row of one result whose 95% interval lies farthest from its threshold, in units of its own width."""
    def margin(o: Outcome) -> float:
        est, lo, hi = o.estimate
        t = o.claim.test
        gap = max(t.lo - hi, lo - t.hi) if result == "fail" else min(lo - t.lo, t.hi - hi)
        return gap / max(hi - lo, 1e-300)
    mine = [o for o in rows if o.result == result and o.estimate is not None]
    return max(mine, key=margin) if mine else None


def independent_run_sets(rows: list[Outcome]) -> int:
    """How many disjoint sets of runs the rows rest on: rows that share a run (the same seed and training curve,
    in whichever results folder) are one set, since readings of the same runs are not independent evidence."""
    sets = [o.runs for o in rows if o.runs]
    groups: list[frozenset] = []
    for s in sets:
        touching = [g for g in groups if g & s]
        merged = frozenset().union(s, *touching)
        groups = [g for g in groups if not (g & s)] + [merged]
    return len(groups)
