"""The report as one Markdown page (results/REPORT.md): the article's three hypotheses and the answer per question
first, what the counts mean, how to read it, one verdict per statement with each question's forest plot, the
extensions apart, then one section per figure with its image, provenance and rows. Deterministic: the same metrics
give the same bytes."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from bnrepro.labels import DATA_TEXT, code_version, data_kind
from bnrepro.report.claims import KINDS, Claims, Figure
from bnrepro.report.evaluate import CENSORED_FAR, RESULTS, Outcome
from bnrepro.report.rollup import (
    ANSWERS,
    STATEMENT_VERDICTS,
    Answer,
    Statement,
    answers,
    holm_survivors,
    hypothesis_answer,
    independent_run_sets,
    measurements,
    statements,
    strongest,
)
from bnrepro.report.stats import LEVEL, resolution
from bnrepro.report.text import cell, effect, ours, test_text, verdict_text

INTRO = """\
This page is written by `make report` from the metrics stored in `results/`; it trains nothing. It judges what
the article "Batch normalization in 3 levels of understanding" (J. Huber, 2020), Ioffe & Szegedy 2015 (§4.1,
MNIST) and Santurkar et al. 2018 say about BN, as listed in [`configs/claims.yaml`](../configs/claims.yaml): each
question below is answered by statements from the sources, and each statement by one or more readings of stored
runs (rows). Most runs use reduced CPU protocols, not the papers' full ones: a verdict is about the protocol its
figure names. Statements none of the three sources makes (later work's, or ours) are extensions: judged the same way,
shown apart, never counted as reproductions."""


def forest_file(question_id: str) -> str:
    """Each question's forest plot, relative to the results folder (drawn by bnrepro.report.forest)."""
    return f"report/forest_{question_id}.png"

def row_counts(outcomes: list[Outcome]) -> list[str]:
    """Rows by kind and result: only the first two kinds can reproduce; an extension's rows are counted apart."""
    head = ["kind", "rows", *RESULTS]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]
    groups = [(kind, [o for o in outcomes if o.claim.kind == kind and not o.claim.extension]) for kind in KINDS]
    groups.append(("extension (any kind)", [o for o in outcomes if o.claim.extension]))
    for name, mine in groups:
        if mine:
            n = Counter(o.result for o in mine)
            lines.append(f"| {name} | {len(mine)} | " + " | ".join(str(n[r]) for r in RESULTS) + " |")
    return lines


def answer_text(a: Answer) -> str:
    """The answer by directions and by paper values, and what the controls say when they decide: a control that
    undercuts a supported answer is the first thing its reader should know."""
    parts = [f"{name}: **{got}**" for kind, name in (("direction", "directions"), ("paper_value", "paper values"))
             if (got := a.answer_for(kind))]
    controls = Counter(o.result for s in a.statements for o in s.rows if o.claim.kind == "control")
    if controls["pass"] or controls["fail"]:
        parts.append("controls: " + ", ".join(f"{n} {word}" for word, n in (
            ("support it", controls["pass"]), ("undercut it", controls["fail"])) if n))
    return " · ".join(parts) or "**not run**"


def hypotheses_lines(claims: Claims, ans: list[Answer]) -> list[str]:
    """The article's three hypotheses, each with what the questions bearing on it answer."""
    by_id = {a.question.id: a for a in ans}
    lines = ["## The article's three hypotheses", ""]
    for i, h in enumerate(claims.hypotheses, 1):
        bearing = "; ".join(f"[{a.question.id.replace('_', ' ')}](#q-{a.question.id}) "
                            f"{a.answer_for('direction') or a.answer} → {toward}"
                            for _, a, toward in hypothesis_answer(h, by_id))
        lines.append(f"{i}. **{h.hypothesis}** ({h.source}). {bearing}.")
    return lines + [""] if claims.hypotheses else []


def answers_table(ans: list[Answer]) -> list[str]:
    shown = STATEMENT_VERDICTS[:5]
    lines = ["| question | answer | strongest evidence | statements: " + " / ".join(shown) + " | run sets "
             "| what would change it |", "|---|---|---|---|---|---|"]
    for a in ans:
        stmts = a.extensions if a.later else a.statements
        n = Counter(s.verdict for s in stmts)
        rows = [o for s in stmts for o in s.deciding]
        lines.append(f"| [{cell(a.question.question)}](#q-{a.question.id}) | {answer_text(a)} | "
                     f"{cell(evidence_text(rows))} | " + " / ".join(str(n[v]) for v in shown)
                     + f" | {independent_run_sets(rows)} | {cell(a.question.changes)} |")
    return lines


def evidence_text(rows: list[Outcome]) -> str:
    """The strongest row for and against: its id (linked to its figure's page), protocol, effect and seeds; when
    no row comparing two networks with a margin exists, the best there is, saying so."""
    parts = []
    for result in ("pass", "fail"):
        o, strong = strongest(rows, result)
        if o is not None:
            f = o.claim.figure
            weak = "" if strong else " (no row comparing two networks with a margin, uncensored, decides this side)"
            parts.append(f"{'for' if result == 'pass' else 'against'}: [`{o.claim.id}`]({page_link(f)}) "
                         f"({f.results}) {effect(o)}, n={o.n}{weak}")
    return "; ".join(parts) or "—"


def counts_lines(outcomes: list[Outcome], stmts: list[Statement]) -> list[str]:
    """What the counts stand on: rows by kind and result, distinct measurements, independent run sets, statements
    that hold on sign tests alone, and what so many readings at 95% imply."""
    deciding = [o for o in outcomes if o.claim.counts and not o.claim.extension]
    decided = [o for o in deciding if o.result in ("pass", "fail")]
    fdr_moved = sum("Benjamini-Hochberg" in o.reason for o in deciding)
    sources = [s for s in stmts if not s.extension]
    holds = [s for s in sources if s.verdict == "holds"]
    testable = [o for o in deciding if o.estimate is not None]
    chance = (1 - LEVEL) * len(testable)
    return [*row_counts(outcomes), "",
            f"- **Measurements**: {len(outcomes)} rows are {measurements(outcomes)} distinct measurements (rows whose "
            f"per-seed statistic is the same numbers, one reading under two names or two thresholds, count once).",
            f"- **Independent sets of runs** behind the sources' {len(decided)} deciding rows that pass or fail: "
            f"{independent_run_sets(decided)} (rows that share a run are one set; rows that decide nothing add none).",
            f"- **Sign tests alone**: {sum(s.sign_only for s in holds)} of the {len(holds)} statements that hold rest "
            f"only on tests with no margin (the direction agrees; the size of the effect is not tested).",
            f"- **Multiplicity**: {len(testable)} of the sources' deciding rows were read at {LEVEL:.0%}. Were every "
            f"true effect exactly on its threshold, chance alone would decide about {chance:.0f} of them "
            f"(≤ {1 - LEVEL:.0%} each). "
            f"Within each question (its reproductions and its extensions as separate families) the false discovery "
            f"rate is held at {1 - LEVEL:.0%} (Benjamini-Hochberg), which moved {fdr_moved} row(s) to inconclusive; "
            f"of the {len(decided)} decisions left, Holm's stricter family-wise correction would keep "
            f"{holm_survivors(deciding)}.", ""]


def statement_section(a: Answer, image: bool) -> list[str]:
    lines = [f'<a id="q-{a.question.id}"></a>', "", f"### {a.question.question}", "",
             f"Answer: {answer_text(a)}. What would change it: {a.question.changes}", ""]
    if image:
        lines += [f"![Forest plot: {cell(a.question.question)}]({forest_file(a.question.id)})", ""]
    lines += statement_table(a.statements) if a.statements else []
    if a.extensions and a.later:
        lines += ["Statements of later work and ours (extensions: none of the three sources makes them):", "",
                  *statement_table(a.extensions)]
    elif a.extensions:
        lines += ["", "Extensions (statements none of the three sources makes; not counted as reproductions):", "",
                  *statement_table(a.extensions)]
    return lines + [""]


def statement_table(stmts: list[Statement]) -> list[str]:
    lines = ["| statement | source | verdict | rows: pass / fail / inconclusive / not testable | strongest evidence "
             "| controls and checks |", "|---|---|---|---|---|---|"]
    for s in stmts:
        n = Counter(o.result for o in s.deciding)
        checks = "; ".join(f"[`{o.claim.id}`]({page_link(o.claim.figure)}) ({o.claim.kind}): {o.verdict}"
                           for o in s.controls) or "—"
        sign = " (sign tests only)" if s.sign_only else ""
        lines.append(f"| {cell(s.text)} | {cell(s.source)} | **{s.verdict}**{sign} | "
                     + " / ".join(str(n[r]) for r in RESULTS[:4])
                     + f" | {cell(evidence_text(s.deciding))} | {cell(checks)} |")
    return lines


def how_to_read(outcomes: list[Outcome]) -> list[str]:
    seeds = sorted({o.n for o in outcomes if o.n > 1})
    res = ", ".join(f"{n} seeds: {resolution(n):.2f} sd" for n in seeds)
    kinds = [f"  - **{k}**: {v}." for k, v in KINDS.items()]
    return ["## How to read it", "",
            "- **A row** reduces each run to one number, pairs the two sides by seed, and takes the statistic "
            "(A, A / B or A − B) per seed. Its effect is the mean over seeds (geometric for ratios) with a 95% "
            "confidence interval (Student's t). It **passes** when the whole interval lies on the passing side "
            "of the test, **fails** when the whole interval lies on the failing side, and is **inconclusive** "
            "otherwise or with fewer seeds than required.",
            f"- **What the seeds can resolve**: an interval excludes zero only when the mean effect exceeds about "
            f"t·sd/√n, i.e. {res} of the seed-to-seed spread. A test marked *sign only* has no margin: it says the "
            f"direction agrees, not that the effect is as large as the source's.",
            "- **Not testable**: a row whose precondition fails (e.g. a network still on its chance plateau, "
            "whose training dynamics say nothing about the claim) gets no verdict either way.",
            "- **Runs that never reached a threshold** (steps to x%) count at their last step; that makes the "
            "statistic a bound, and the row is decided only when the bound decides, the same way with those runs "
            f"put at {CENSORED_FAR}× their last step. An effect that rests on censored runs alone is shown as a bound "
            "(≥ or ≤).",
            "- **Multiplicity**: within each question the false discovery rate is held at 5% (Benjamini-Hochberg); a "
            "row decided at 95% that does not survive it is inconclusive, and says so.",
            "- **Strongest evidence**: the deciding row whose interval lies farthest past its threshold, in units of "
            "its width on the scale the interval is computed on (log for ratios), among the rows that compare two "
            "networks, rest on no censored run and have an interval of some width; when none decides, the best "
            "row there is, marked as such.",
            "- **Diverged runs** without a value are left out, and named in the row.",
            "- **Kinds**: only paper values and directions can reproduce a statement:", *kinds,
            "- **A statement** holds when every deciding row passes, fails when every one fails, is mixed "
            "otherwise; **a question** is supported, contradicted or mixed in the same way over its statements. "
            "Readings of the same runs are not independent evidence: each question says on how many disjoint "
            "sets of runs its passing and failing rows rest.",
            "- **Extensions**: statements none of the three sources makes, shown under each question apart from "
            "its statements; they never enter the sources' answers. A question that only extensions answer (later "
            "work's) is answered in \"What later work found\".", ""]


def provenance(figure: Figure, runs: pd.DataFrame | None) -> str:
    if runs is None:
        return f"No stored results in `results/{figure.results}/`: run `{figure.command}`."
    commits, dirty = code_version(runs)
    code = ", ".join(f"`{c}`" for c in commits) or "unknown"
    if dirty:
        dirty_runs = runs[runs["git_dirty"].fillna(False).astype(bool)]
        kept = int(dirty_runs.get("diff_kept", pd.Series(False, index=dirty_runs.index)).sum())
        code += (f" with uncommitted changes in {len(dirty_runs)} run(s), "
                 + ("each run's diff kept in" if kept == len(dirty_runs) else
                    f"{kept} of their diffs kept in") + f" `results/{figure.results}/code_diffs/`")
    else:
        code += " (clean tree)"
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(Counter(runs.get("status", pd.Series(dtype=str))).items()))
    seeds = sorted(int(s) for s in runs["seed"].unique()) if "seed" in runs else []
    experiments = ", ".join(f"`{e}`" for e in sorted(runs["experiment"].astype(str).unique())) \
        if "experiment" in runs else "unknown"
    return (f"Command: `{figure.command}` (experiment {experiments}). Code: commit {code}. "
            f"Data: {DATA_TEXT[data_kind(runs)]}. "
            f"Runs: {len(runs)} ({statuses}), seeds {', '.join(map(str, seeds))}. "
            f"Protocol: {' '.join(figure.protocol.split())}")


def page_link(figure: Figure, prefix: str = "report/") -> str:
    return f"{prefix}{figure.id}.md"


def figure_page(figure: Figure, outcomes: list[Outcome], runs: pd.DataFrame | None, image_exists: bool) -> str:
    """results/report/<figure>.md: the figure, what it shows, where it comes from, and every row it judges."""
    image = f"{figure.results}/{figure.file}"
    lines = [f"# {figure.title}", "", "[← the report](../REPORT.md)", "",
             f"![{figure.title}](../{image})" if image_exists else
             f"*Figure not drawn yet (`{image}`): `make figures` draws it from the stored metrics.*",
             "", f"**What it shows.** {' '.join(figure.shows.split())}", "",
             f"**Provenance.** {provenance(figure, runs)}", ""]
    if figure.requires:
        lines += ["**Precondition.** " + "; ".join(r.describe() for r in figure.requires) + ".", ""]
    lines += ["| claim | kind | statement | reading | ours: effect [95% interval] | test | verdict |",
              "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        c = o.claim
        note = f" {c.note}" if c.note else ""
        paper = f" Paper: {c.paper}." if c.paper else ""
        lines.append(f"| {c.id} | {c.kind} | {cell(c.claim + note)} | {cell(c.reading + paper)} | "
                     f"{cell(ours(o))} | {cell(test_text(c))} | {cell(verdict_text(o))} |")
    return "\n".join(lines).rstrip() + "\n"


def render(claims: Claims, outcomes: list[Outcome], runs: dict[str, pd.DataFrame | None],
           images: dict[str, bool], forests: set[str] = frozenset()) -> dict[str, str]:
    """Every page, by its path relative to the results folder: REPORT.md and report/<figure>.md. `forests`: the
    questions whose forest plot is drawn (forest_file)."""
    stmts = statements(outcomes)
    everything = answers(claims.questions, stmts)
    ans, later = [a for a in everything if not a.later], [a for a in everything if a.later]
    sources = [s for s in stmts if not s.extension]
    ns = Counter(s.verdict for s in sources)
    ne = Counter(s.verdict for s in stmts if s.extension)
    headline = []
    for kind, name in (("direction", "directions"), ("paper_value", "the papers' values")):
        n = Counter(a.answer_for(kind) for a in ans)
        headline.append(f"by {name}, " + ", ".join(f"{n[w]} {w}" for w in ANSWERS if n[w]))
    decided = [o for o in outcomes if o.claim.counts and not o.claim.extension and o.result in ("pass", "fail")]
    headline = (f"**{len(ans)} questions; " + "; ".join(headline) + f". {len(sources)} statements of the sources: "
                + ", ".join(f"{ns[w]} {w}" for w in STATEMENT_VERDICTS if ns[w])
                + f" ({sum(s.sign_only for s in sources)} of the holds on sign tests alone). "
                + (f"{sum(ne.values())} extensions: " + ", ".join(f"{ne[w]} {w}" for w in STATEMENT_VERDICTS if ne[w])
                   + (f", {len(later)} questions from later work answered by them: "
                      + ", ".join(f"{nl[w]} {w}" for w in ANSWERS if (nl := Counter(a.answer for a in later))[w])
                      if later else "")
                   + ". " if ne else "")
                + f"{len(outcomes)} rows; the sources' passing and failing rows rest on "
                f"{independent_run_sets(decided)} independent sets of runs.**")
    later_lines = ["### What later work found", "",
                   "Questions that later work raises about why BN works (../shared/papers/later-work.md), answered "
                   "the same way from extensions only: none counts as a reproduction.", "",
                   *answers_table(later), ""] if later else []
    lines = ["# Claims about batch normalization, judged from stored metrics", "", INTRO, "",
             *hypotheses_lines(claims, everything), "## Answers", "", headline, "", *answers_table(ans), "",
             *later_lines, "## What the counts stand on", "", *counts_lines(outcomes, stmts), *how_to_read(outcomes),
             "## Statements", ""]
    for a in ans + later:
        lines += statement_section(a, a.question.id in forests)
    lines += ["## Figures", "", "Each figure's page has its image, provenance and every row it judges.", ""]
    pages = {}
    for f in claims.figures:
        mine = [o for o in outcomes if o.claim.figure.id == f.id]
        n = Counter(o.result for o in mine)
        lines.append(f"- [{f.title}]({page_link(f)}): {len(mine)} rows, "
                     + ", ".join(f"{n[r]} {r}" for r in RESULTS if n[r]))
        pages[page_link(f)] = figure_page(f, mine, runs.get(f.results), images.get(f.id, False))
    lines.append("")
    if claims.untested:
        lines += ["## Not tested here yet", "",
                  "Claims of the article and the papers that no experiment here tests yet, so they have no verdict:",
                  "", "| source | claim | why not |", "|---|---|---|"]
        lines += [f"| {cell(u.source)} | {cell(u.claim)} | {cell(u.why)} |" for u in claims.untested]
    return {"REPORT.md": "\n".join(lines).rstrip() + "\n", **pages}
