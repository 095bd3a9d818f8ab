"""The claims file (configs/claims.yaml): the figures the report shows and the claims it judges.

Loading checks every entry once, so that a typo is an error naming the claim and the key, before anything is
measured. Each claim inherits its results folder, command, seed count and preconditions from its figure.

A claim row is one reading of one statement (rows with the same `claim` text read the same statement); each
statement answers one question (a hypothesis about BN), and each row says what kind of evidence it is.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from bnrepro.report.schema import (
    CLAIM_KEYS,
    COUNTED,
    FIGURE_KEYS,
    HYPOTHESIS_KEYS,
    KINDS,
    QUESTION_KEYS,
    REDUCE_OPTIONAL,
    REDUCERS,
    REQUIRE_KEYS,
    STATS,
    TEST_KEYS,
    Claim,
    Claims,
    ClaimsError,
    Figure,
    Hypothesis,
    Question,
    Requirement,
    Test,
    Untested,
)

__all__ = ["Claim", "Claims", "ClaimsError", "Figure", "Hypothesis", "KINDS", "Question", "Requirement", "Test",
           "Untested",
           "load", "load_all"]


def load(path: Path) -> tuple[list[Figure], list[Claim]]:
    c = load_all(path)
    return c.figures, c.claims


def load_all(path: Path) -> Claims:
    """Every entry of the claims file, checked, from one read of it."""
    doc = _read(path)
    if not {"questions", "figures", "claims"} <= set(doc):
        raise ClaimsError(f"{path}: expected top-level keys 'questions', 'figures' and 'claims'")
    questions = []
    for q in doc["questions"]:
        _keys(q, QUESTION_KEYS, QUESTION_KEYS, f"question {q.get('id', '?')!r}" if isinstance(q, dict) else "question")
        questions.append(Question(**{k: " ".join(str(q[k]).split()) for k in QUESTION_KEYS}))
    by_question = _unique({q.id: q for q in questions}, questions, "question")
    default_seeds = int(doc.get("seeds", 3))
    figures = [_figure(f, default_seeds) for f in doc["figures"]]
    by_id = _unique({f.id: f for f in figures}, figures, "figure")
    claims = [_claim(c, by_id, by_question) for c in doc["claims"]]
    _unique({c.id: c for c in claims}, claims, "claim")
    unused = sorted(set(by_question) - {c.question for c in claims})
    if unused:
        raise ClaimsError(f"question(s) {unused} have no claim rows")
    untested = []
    tested = {f.results: f.id for f in figures}
    for i, u in enumerate(doc.get("untested") or []):
        where = f"untested entry {i + 1}"
        _keys(u, {"source", "claim", "why", "needs"}, {"source", "claim", "why", "needs"}, where)
        if str(u["needs"]) in tested:
            raise ClaimsError(f"{where} ({u['claim']!r}): figure {tested[str(u['needs'])]!r} reads results/"
                              f"{u['needs']}/ now, so it is tested: remove the entry")
        untested.append(Untested(**{k: str(v).strip() for k, v in u.items()}))
    hypotheses = [_hypothesis(h, by_question) for h in doc.get("hypotheses") or []]
    _unique({h.id: h for h in hypotheses}, hypotheses, "hypothesis")
    return Claims(hypotheses, questions, figures, claims, untested)


def _hypothesis(h: dict, questions: dict[str, Question]) -> Hypothesis:
    where = f"hypothesis {h.get('id', '?')!r}" if isinstance(h, dict) else "hypothesis"
    _keys(h, HYPOTHESIS_KEYS, {"id", "hypothesis", "source"}, where)
    sides = tuple(tuple(h.get(k) or ()) for k in ("for", "against"))
    unknown = sorted(set(sides[0] + sides[1]) - set(questions))
    if unknown or not any(sides):
        raise ClaimsError(f"{where}: for/against must name questions among {sorted(questions)}"
                          + (f"; unknown: {unknown}" if unknown else ""))
    return Hypothesis(str(h["id"]), " ".join(str(h["hypothesis"]).split()), str(h["source"]), *sides)


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
    _keys(f, FIGURE_KEYS, FIGURE_KEYS - {"seeds", "requires"}, where)
    return Figure(**{k: str(f[k]).strip() for k in FIGURE_KEYS - {"seeds", "requires"}},
                  seeds=int(f.get("seeds", default_seeds)), requires=_requires(f.get("requires"), where))


def _requires(r, where: str) -> tuple:
    if r is None:
        return ()
    items = r if isinstance(r, list) else [r]
    out = []
    for i, item in enumerate(items):
        w = f"{where}, requires[{i}]"
        _keys(item, REQUIRE_KEYS, {"metric", "reduce", "why"}, w)
        reduce = _reduce(item["reduce"], w)
        lo, hi = float(item.get("at_least", -float("inf"))), float(item.get("at_most", float("inf")))
        if lo == -float("inf") and hi == float("inf"):
            raise ClaimsError(f"{w}: needs at_least or at_most")
        out.append(Requirement(str(item["metric"]), reduce, lo, hi, " ".join(str(item["why"]).split())))
    return tuple(out)


def _reduce(r, where: str) -> dict:
    reduce = dict(r) if isinstance(r, dict) else {"how": r}
    how = reduce.get("how")
    if how not in REDUCERS:
        raise ClaimsError(f"{where}: reduce.how={how!r}; one of {sorted(REDUCERS)}")
    _keys(reduce, {"how"} | REDUCERS[how] | REDUCE_OPTIONAL, {"how"} | REDUCERS[how], f"{where}, reduce")
    return reduce


def _claim(c: dict, figures: dict[str, Figure], questions: dict[str, Question]) -> Claim:
    where = f"claim {c.get('id', '?')!r}" if isinstance(c, dict) else "claim"
    _keys(c, CLAIM_KEYS, {"id", "figure", "source", "claim", "reading", "metric", "reduce", "a", "test", "kind",
                          "question"}, where)
    if c["figure"] not in figures:
        raise ClaimsError(f"{where}: figure {c['figure']!r} is not among the figures {sorted(figures)}")
    if c["kind"] not in KINDS:
        raise ClaimsError(f"{where}: kind={c['kind']!r}; one of {sorted(KINDS)}")
    if c["question"] not in questions:
        raise ClaimsError(f"{where}: question={c['question']!r} is not among the questions {sorted(questions)}")
    reduce = _reduce(c["reduce"], where)
    test = _test(c["test"], where)
    if (test.stat == "value") != (c.get("b") is None):
        raise ClaimsError(f"{where}: test.stat={test.stat!r} " + (
            "compares one side: drop 'b'" if test.stat == "value" else "needs a second side 'b'"))
    for side in ("a", "b", "runs"):
        if c.get(side) is not None and not isinstance(c[side], dict):
            raise ClaimsError(f"{where}: {side} must be a mapping of run columns to values, e.g. {{variant: batch}}")
    baseline = c.get("baseline")
    if baseline is not None:
        if not (isinstance(baseline, dict) and set(baseline) == {"a", "b"}) or test.stat != "difference" \
                or c.get("b") is None:
            raise ClaimsError(f"{where}: baseline needs a and b (the same comparison without the effect), and the "
                              f"row a difference between its own a and b")
    across = c.get("across")
    if across is not None and not (isinstance(across, dict) and set(across) == {"column", "above"}):
        raise ClaimsError(f"{where}: across needs column (a run column, e.g. lr) and above (the value to pass)")
    over_runs = [k for k in ("across", "best_over", "spread_over") if c.get(k) is not None]
    if len(over_runs) > 1:
        raise ClaimsError(f"{where}: {' and '.join(over_runs)} exclude each other")
    for key in ("best_over", "spread_over"):
        if c.get(key) is not None and not isinstance(c[key], str):
            raise ClaimsError(f"{where}: {key} names one run column (e.g. lr)")
    x = c.get("x")
    if x is not None:
        if not (isinstance(x, dict) and set(x) == {"metric", "reduce"}) or c.get("b") is not None \
                or c["test"].get("stat") != "value":
            raise ClaimsError(f"{where}: x needs metric and reduce, one side a, and test.stat value (on ρ)")
        x = {"metric": str(x["metric"]), "reduce": _reduce(x["reduce"], f"{where}, x")}
    if c.get("minus") and c.get("over"):
        raise ClaimsError(f"{where}: minus and over exclude each other")
    _instrument(c, where)
    figure = figures[c["figure"]]
    return Claim(id=str(c["id"]), figure=figure, source=str(c["source"]), claim=str(c["claim"]).strip(),
                 reading=str(c["reading"]), metric=str(c["metric"]), reduce=reduce, a=dict(c["a"]),
                 b=dict(c["b"]) if c.get("b") is not None else None, test=test,
                 seeds=int(c.get("seeds", figure.seeds)), kind=str(c["kind"]), question=str(c["question"]),
                 requires=_requires(c["requires"], where) if "requires" in c else figure.requires,
                 paper=str(c.get("paper", "")).strip(),
                 minus=c.get("minus"), over=c.get("over"), baseline=baseline, across=across, x=x,
                 best_over=c.get("best_over"), spread_over=c.get("spread_over"),
                 note=str(c.get("note", "")).strip(), runs=dict(c.get("runs") or {}))


def _instrument(c: dict, where: str) -> None:
    """A reading of noisy BN's activations under fresh noise at every probe measures the noise the probe injects,
    whatever the network does: it can be a check that the noise is injected (sanity), never evidence. The same
    reading under the same noise at every probe (<metric>_same_noise) removes the noise's own move (read right after
    the normalisation it is still mostly γ and β: claims.yaml says why no row uses it as evidence)."""
    noisy = any(str((side or {}).get("variant", "")).startswith("noisy") for side in (c.get("a"), c.get("b")))
    if noisy and c["kind"] in COUNTED + ("control",) and str(c["metric"]).startswith("act/") \
            and not str(c["metric"]).endswith("_same_noise"):
        raise ClaimsError(f"{where}: {c['metric']} of noisy BN measures the noise the probe injects, not the "
                          f"network: make it kind sanity, or read {c['metric']}_same_noise")


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
