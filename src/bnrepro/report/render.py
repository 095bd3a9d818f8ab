"""The report as one Markdown page (results/REPORT.md): the answer per question first, how to read it, one verdict
per statement, then one section per figure with its image, provenance and rows. Deterministic: the same metrics
give the same bytes."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from bnrepro.labels import DATA_TEXT, code_version, data_kind
from bnrepro.report.claims import KINDS, Claims, Figure
from bnrepro.report.evaluate import RESULTS, Outcome
from bnrepro.report.rollup import (
    ANSWERS,
    STATEMENT_VERDICTS,
    Answer,
    answers,
    independent_run_sets,
    statements,
    strongest,
)
from bnrepro.report.stats import resolution
from bnrepro.report.text import cell, effect, ours, test_text, verdict_text

INTRO = """\
This page is written by `make report` from the metrics stored in `results/`; it trains nothing. It judges what
the article "Batch normalization in 3 levels of understanding" (J. Huber, 2020), Ioffe & Szegedy 2015 (§4.1,
MNIST) and Santurkar et al. 2018 say about BN, as listed in [`configs/claims.yaml`](../configs/claims.yaml): each
question below is answered by statements from the sources, and each statement by one or more readings of stored
runs (rows). Most runs use reduced CPU protocols, not the papers' full ones: a verdict is about the protocol its
figure names."""

def row_counts(outcomes: list[Outcome]) -> list[str]:
    """Rows by kind and result: only the first two kinds count as reproductions."""
    head = ["kind", "rows", *RESULTS]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]
    for kind in KINDS:
        mine = [o for o in outcomes if o.claim.kind == kind]
        if mine:
            n = Counter(o.result for o in mine)
            lines.append(f"| {kind} | {len(mine)} | " + " | ".join(str(n[r]) for r in RESULTS) + " |")
    return lines


def answer_text(a: Answer) -> str:
    parts = [f"{name}: **{got}**" for kind, name in (("direction", "directions"), ("paper_value", "paper values"))
             if (got := a.answer_for(kind))]
    return " · ".join(parts) or "**not run**"


def answers_table(ans: list[Answer]) -> list[str]:
    shown = STATEMENT_VERDICTS[:5]
    lines = ["| question | answer | strongest evidence | statements: " + " / ".join(shown) + " | run sets "
             "| what would change it |", "|---|---|---|---|---|---|"]
    for a in ans:
        n = Counter(s.verdict for s in a.statements)
        rows = [o for s in a.statements for o in s.deciding]
        lines.append(f"| [{cell(a.question.question)}](#q-{a.question.id}) | {answer_text(a)} | "
                     f"{cell(evidence_text(rows))} | " + " / ".join(str(n[v]) for v in shown)
                     + f" | {independent_run_sets(rows)} | {cell(a.question.changes)} |")
    return lines


def evidence_text(rows: list[Outcome]) -> str:
    """The strongest row for and against: its id (linked to its figure's page), protocol, effect and seeds."""
    parts = []
    for result in ("pass", "fail"):
        o = strongest(rows, result)
        if o is not None:
            f = o.claim.figure
            parts.append(f"{'for' if result == 'pass' else 'against'}: [`{o.claim.id}`]({page_link(f)}) "
                         f"({f.results}) {effect(o)}, n={o.n}")
    return "; ".join(parts) or "—"


def statement_section(a: Answer) -> list[str]:
    lines = [f'<a id="q-{a.question.id}"></a>', "", f"### {a.question.question}", "",
             f"Answer: {answer_text(a)}. What would change it: {a.question.changes}", "",
             "| statement | source | verdict | rows: pass / fail / inconclusive / not testable | strongest evidence "
             "| controls and checks |", "|---|---|---|---|---|---|"]
    for s in a.statements:
        n = Counter(o.result for o in s.deciding)
        checks = "; ".join(f"[`{o.claim.id}`]({page_link(o.claim.figure)}) ({o.claim.kind}): {o.verdict}"
                           for o in s.controls) or "—"
        lines.append(f"| {cell(s.text)} | {cell(s.source)} | **{s.verdict}** | "
                     + " / ".join(str(n[r]) for r in RESULTS[:4])
                     + f" | {cell(evidence_text(s.deciding))} | {cell(checks)} |")
    return lines + [""]


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
            "statistic a bound, and the row is decided only when the bound decides.",
            "- **Diverged runs** without a value are left out, and named in the row.",
            "- **Kinds**: only paper values and directions can reproduce a statement:", *kinds,
            "- **A statement** holds when every deciding row passes, fails when every one fails, is mixed "
            "otherwise; **a question** is supported, contradicted or mixed in the same way over its statements. "
            "Readings of the same runs are not independent evidence: each question says on how many disjoint "
            "sets of runs it rests.", ""]


def provenance(figure: Figure, runs: pd.DataFrame | None) -> str:
    if runs is None:
        return f"No stored results in `results/{figure.results}/`: run `{figure.command}`."
    commits, dirty = code_version(runs)
    code = ", ".join(f"`{c}`" for c in commits) or "unknown"
    code += " with uncommitted changes (each run keeps its code.diff)" if dirty else " (clean tree)"
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
           images: dict[str, bool]) -> dict[str, str]:
    """Every page, by its path relative to the results folder: REPORT.md and report/<figure>.md."""
    stmts = statements(outcomes)
    ans = answers(claims.questions, stmts)
    ns = Counter(s.verdict for s in stmts)
    headline = []
    for kind, name in (("direction", "directions"), ("paper_value", "the papers' values")):
        n = Counter(a.answer_for(kind) for a in ans)
        headline.append(f"by {name}, " + ", ".join(f"{n[w]} {w}" for w in ANSWERS if n[w]))
    headline = (f"**{len(ans)} questions; " + "; ".join(headline) + f". {len(stmts)} statements: "
                + ", ".join(f"{ns[w]} {w}" for w in STATEMENT_VERDICTS if ns[w]) + f". {len(outcomes)} rows, on "
                f"{independent_run_sets([o for o in outcomes if o.claim.counts])} independent sets of runs.**")
    lines = ["# Claims about batch normalization, judged from stored metrics", "", INTRO, "", "## Answers", "",
             headline, "", *answers_table(ans), "", *row_counts(outcomes), "", *how_to_read(outcomes),
             "## Statements", ""]
    for a in ans:
        lines += statement_section(a)
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
