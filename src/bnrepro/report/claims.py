"""The claims file (configs/claims.yaml): the figures the report shows and the claims it judges.

Loading checks every entry once, so that a typo is an error naming the claim and the key, before anything is
measured. Each claim inherits its results folder, command and seed count from its figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

REDUCERS = {  # how a run's series becomes one number, and the keys each needs (besides `how`)
    "final": set(), "at_step": {"step"}, "max": set(), "min": set(), "median": set(), "mean": set(),
    "range": set(), "change": set(), "step_change": set(), "steps_to": {"threshold"},
}
REDUCE_OPTIONAL = {"from", "to", "window", "smooth", "below", "stat"}
STATS = {"value", "ratio", "difference"}
TEST_KEYS = {"stat", "at_least", "at_most", "near", "tol", "factor"}
FIGURE_KEYS = {"id", "results", "file", "title", "shows", "command", "protocol", "seeds"}
CLAIM_KEYS = {"id", "figure", "source", "claim", "reading", "metric", "minus", "reduce", "runs", "a", "b", "test",
              "paper", "seeds", "note"}


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


@dataclass(frozen=True)
class Test:
    """Passes when lo <= statistic <= hi; the statistic is A's value, A/B, or A - B, per seed."""
    stat: str
    lo: float
    hi: float

    def passes(self, s: float) -> bool:
        return bool(self.lo <= s <= self.hi)  # NaN (a run that never produced the quantity) never passes

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
    paper: str = ""
    minus: str | None = None
    note: str = ""
    runs: dict = field(default_factory=dict)

    @property
    def command(self) -> str:
        return self.figure.command


@dataclass(frozen=True)
class Untested:
    """A claim the sources make that no experiment here tests yet, and why."""
    source: str
    claim: str
    why: str


def load(path: Path) -> tuple[list[Figure], list[Claim]]:
    figures, claims, _ = load_all(path)
    return figures, claims


def load_all(path: Path) -> tuple[list[Figure], list[Claim], list[Untested]]:
    """The figures, the claims and the untested claims, from one read of the file."""
    doc = _read(path)
    if not {"figures", "claims"} <= set(doc):
        raise ClaimsError(f"{path}: expected top-level keys 'figures' and 'claims'")
    default_seeds = int(doc.get("seeds", 3))
    figures = [_figure(f, default_seeds) for f in doc["figures"]]
    by_id = _unique({f.id: f for f in figures}, figures, "figure")
    claims = [_claim(c, by_id) for c in doc["claims"]]
    _unique({c.id: c for c in claims}, claims, "claim")
    untested = []
    for i, u in enumerate(doc.get("untested") or []):
        _keys(u, {"source", "claim", "why"}, {"source", "claim", "why"}, f"untested entry {i + 1}")
        untested.append(Untested(**{k: str(v).strip() for k, v in u.items()}))
    return figures, claims, untested


def _read(path: Path) -> dict:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise ClaimsError(f"{path}: not valid YAML: {e}") from e
    return doc if isinstance(doc, dict) else {}


def _unique(index: dict, items: list, kind: str) -> dict:
    if len(index) != len(items):
        seen: set[str] = set()
        dup = next(i.id for i in items if i.id in seen or seen.add(i.id))
        raise ClaimsError(f"{kind} id {dup!r} appears twice")
    return index


def _keys(entry: dict, allowed: set[str], required: set[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise ClaimsError(f"{where}: expected a mapping, got {entry!r}")
    unknown, missing = set(entry) - allowed, required - set(entry)
    if unknown:
        raise ClaimsError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    if missing:
        raise ClaimsError(f"{where}: missing key(s) {sorted(missing)}")


def _figure(f: dict, default_seeds: int) -> Figure:
    where = f"figure {f.get('id', '?')!r}" if isinstance(f, dict) else "figure"
    _keys(f, FIGURE_KEYS, FIGURE_KEYS - {"seeds"}, where)
    return Figure(**{k: str(f[k]).strip() for k in FIGURE_KEYS - {"seeds"}}, seeds=int(f.get("seeds", default_seeds)))


def _claim(c: dict, figures: dict[str, Figure]) -> Claim:
    where = f"claim {c.get('id', '?')!r}" if isinstance(c, dict) else "claim"
    _keys(c, CLAIM_KEYS, {"id", "figure", "source", "claim", "reading", "metric", "reduce", "a", "test"}, where)
    if c["figure"] not in figures:
        raise ClaimsError(f"{where}: figure {c['figure']!r} is not among the figures {sorted(figures)}")
    reduce = dict(c["reduce"]) if isinstance(c["reduce"], dict) else {"how": c["reduce"]}
    how = reduce.get("how")
    if how not in REDUCERS:
        raise ClaimsError(f"{where}: reduce.how={how!r}; one of {sorted(REDUCERS)}")
    _keys(reduce, {"how"} | REDUCERS[how] | REDUCE_OPTIONAL, {"how"} | REDUCERS[how], f"{where}, reduce")
    test = _test(c["test"], where)
    if (test.stat == "value") != (c.get("b") is None):
        raise ClaimsError(f"{where}: test.stat={test.stat!r} " + (
            "compares one side: drop 'b'" if test.stat == "value" else "needs a second side 'b'"))
    for side in ("a", "b", "runs"):
        if c.get(side) is not None and not isinstance(c[side], dict):
            raise ClaimsError(f"{where}: {side} must be a mapping of run columns to values, e.g. {{variant: batch}}")
    figure = figures[c["figure"]]
    return Claim(id=str(c["id"]), figure=figure, source=str(c["source"]), claim=str(c["claim"]).strip(),
                 reading=str(c["reading"]), metric=str(c["metric"]), reduce=reduce, a=dict(c["a"]),
                 b=dict(c["b"]) if c.get("b") is not None else None, test=test,
                 seeds=int(c.get("seeds", figure.seeds)), paper=str(c.get("paper", "")).strip(),
                 minus=c.get("minus"), note=str(c.get("note", "")).strip(), runs=dict(c.get("runs") or {}))


def _test(t: dict, where: str) -> Test:
    _keys(t, TEST_KEYS, {"stat"}, f"{where}, test")
    if t["stat"] not in STATS:
        raise ClaimsError(f"{where}: test.stat={t['stat']!r}; one of {sorted(STATS)}")
    inf = float("inf")
    if "near" in t:
        near = float(t["near"])
        if ("tol" in t) == ("factor" in t):
            raise ClaimsError(f"{where}: test.near needs exactly one of tol (absolute) or factor (multiplicative)")
        lo, hi = ((near - float(t["tol"]), near + float(t["tol"])) if "tol" in t
                  else (near / float(t["factor"]), near * float(t["factor"])))
    else:
        lo, hi = float(t.get("at_least", -inf)), float(t.get("at_most", inf))
        if lo == -inf and hi == inf:
            raise ClaimsError(f"{where}: test needs at_least, at_most, or near with tol/factor")
    return Test(stat=t["stat"], lo=lo, hi=hi)
