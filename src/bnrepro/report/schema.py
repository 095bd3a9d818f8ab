"""What the claims file describes: questions, figures, claim rows, their tests and preconditions, and the kinds
of evidence a row can be. claims.py reads the file into these; evaluate.py judges them."""

from __future__ import annotations

from dataclasses import dataclass, field

REDUCERS = {  # how a run's series becomes one number, and the keys each needs (besides `how`)
    "final": set(), "at_step": {"step"}, "max": set(), "min": set(), "median": set(), "mean": set(), "absmax": set(),
    "range": set(), "change": set(), "drift": set(), "step_change": set(), "steps_to": {"threshold"},
}
REDUCE_OPTIONAL = {"from", "to", "window", "smooth", "below", "stat"}
STATS = {"value", "ratio", "difference"}
TEST_KEYS = {"stat", "at_least", "at_most", "near", "tol", "factor"}
FIGURE_KEYS = {"id", "results", "file", "title", "shows", "command", "protocol", "seeds", "requires"}
CLAIM_KEYS = {"id", "figure", "source", "claim", "reading", "metric", "minus", "reduce", "runs", "a", "b", "test",
              "paper", "seeds", "note", "kind", "question", "requires", "over", "baseline", "across", "x",
              "best_over", "spread_over"}
REQUIRE_KEYS = {"metric", "reduce", "at_least", "at_most", "why"}
QUESTION_KEYS = {"id", "question", "changes"}
HYPOTHESIS_KEYS = {"id", "hypothesis", "source", "for", "against"}
# The three sources whose statements bnrepro reproduces. A statement whose source starts with none of them (later
# work, or ours) is an extension: judged the same way, shown apart, never counted as a reproduction.
SOURCES = ("article", "Ioffe", "Santurkar")
# What a row is evidence of. Only the first two can reproduce a claim; a control passes when it supports the
# claim's explanation against another one; a sanity check holds by construction; a fitted row tests values the
# protocol was chosen on.
KINDS = {
    "paper_value": "a value the paper reports, compared within the tolerance a value read off a plot allows",
    "direction": "the direction the source states (which is larger, faster, smoother), with its margin if any",
    "control": "tests another explanation of the effect; passes when the result supports the claim's one",
    "sanity": "true by construction of the method, or set by the instrument or the protocol (the noise injected, "
              "the learning rate through 2/lr); shows the code does what it says, not that the claim holds",
    "fitted": "the protocol's free settings were searched to match this value, so agreement is partly built in",
}
COUNTED = ("paper_value", "direction")


class ClaimsError(ValueError):
    """A malformed claims file: the message names the entry and the key."""


@dataclass(frozen=True)
class Figure:
    id: str
    results: str        # results/<results>/ holds metrics.parquet and runs.csv
    file: str           # the image, relative to that folder
    title: str
    shows: str
    command: str
    protocol: str
    seeds: int
    requires: tuple = ()  # Requirement(s) every row of the figure inherits unless it sets its own


@dataclass(frozen=True)
class Requirement:
    """A precondition for a row to be testable at all: each side's mean over seeds of `metric`, reduced as
    `reduce`, lies within [lo, hi] (e.g. the median training loss in the window read is below the chance
    plateau). When it does not, the row is "not testable" in this protocol, whatever its test says."""
    metric: str
    reduce: dict
    lo: float
    hi: float
    why: str

    def describe(self) -> str:
        bound = f"≤ {self.hi:g}" if self.lo == -float("inf") else f"≥ {self.lo:g}" if self.hi == float("inf") \
            else f"in [{self.lo:g}, {self.hi:g}]"
        return f"{self.reduce['how']} {self.metric} {bound} on every side the row reads ({self.why})"


@dataclass(frozen=True)
class Hypothesis:
    """One of the article's three hypotheses on why BN works (§C.3-C.4), and the questions that bear on it: a
    question in `for` supports the hypothesis when its answer is "supported", one in `against` undercuts it."""
    id: str
    hypothesis: str
    source: str
    supports: tuple[str, ...]
    undercuts: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    changes: str  # what would change the answer (another protocol, more seeds, the full protocol on a GPU)


@dataclass(frozen=True)
class Test:
    """Passes when the 95% interval of the statistic (A's value, A / B or A − B per seed) lies within [lo, hi]."""
    stat: str
    lo: float
    hi: float

    def describe(self, a: str, b: str | None) -> str:
        lhs = {"value": a, "ratio": f"{a} / {b}", "difference": f"{a} − {b}"}[self.stat]
        if self.lo == -float("inf"):
            return f"{lhs} ≤ {self.hi:g}"
        if self.hi == float("inf"):
            return f"{lhs} ≥ {self.lo:g}"
        return f"{self.lo:g} ≤ {lhs} ≤ {self.hi:g}"


@dataclass(frozen=True)
class Claim:
    id: str
    figure: Figure
    source: str
    claim: str
    reading: str
    metric: str
    reduce: dict
    a: dict
    b: dict | None
    test: Test
    seeds: int
    kind: str
    question: str
    requires: tuple = ()
    paper: str = ""
    minus: str | None = None
    over: str | None = None     # a second metric the first is divided by, step by step
    baseline: dict | None = None  # {a, b}: the statistic is (A − B) − (A′ − B′), a difference in differences
    across: dict | None = None    # {column, above}: a side's value is the span (decades) of column where it passes
    x: dict | None = None         # {metric, reduce}: the row is Spearman's ρ across runs between x and the metric
    best_over: str | None = None  # a run column (lr): a side's value per seed is its best run's over that column
    spread_over: str | None = None  # a run column (lr): a side's value per seed is its values' spread, in decades
    note: str = ""
    runs: dict = field(default_factory=dict)

    @property
    def command(self) -> str:
        return self.figure.command

    @property
    def extension(self) -> bool:
        """A statement none of the three sources makes: judged, shown apart, never a reproduction."""
        return not self.source.startswith(SOURCES)

    @property
    def counts(self) -> bool:
        """Whether this row decides its statement (controls, sanity checks and fitted rows do not); a deciding row
        of an extension decides the extension, never a reproduction."""
        return self.kind in COUNTED

    @property
    def sign_only(self) -> bool:
        """A test with no margin: its threshold is no effect at all (a ratio of 1, a difference of 0)."""
        return (self.test.stat == "difference" and 0 in (self.test.lo, self.test.hi)) or \
            (self.test.stat == "ratio" and 1 in (self.test.lo, self.test.hi))


@dataclass(frozen=True)
class Untested:
    """A claim the sources make that no experiment here tests yet, why, and the results folder that would test it
    (a figure reading that folder makes the entry an error: the claim is tested)."""
    source: str
    claim: str
    why: str
    needs: str


@dataclass(frozen=True)
class Claims:
    hypotheses: list[Hypothesis]
    questions: list[Question]
    figures: list[Figure]
    claims: list[Claim]
    untested: list[Untested]
