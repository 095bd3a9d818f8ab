"""The report as one Markdown page (results/REPORT.md): counts, a summary table, then one section per figure with
its image, what it shows, its claims and its provenance. Deterministic: the same metrics give the same bytes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from bnrepro.figures.style import data_kind, label
from bnrepro.report.claims import Claim, Figure, Untested
from bnrepro.report.evaluate import VERDICTS, Outcome, spread

SOURCES = {"article": "the article (Huber 2020)", "Ioffe": "Ioffe & Szegedy 2015",
           "Santurkar": "Santurkar et al. 2018"}

INTRO = """\
This page is written by `make report` from the metrics stored in `results/`; it trains nothing. Each claim of
the article "Batch normalization in 3 levels of understanding" (J. Huber, 2020), of Ioffe & Szegedy 2015 (§4.1,
MNIST) and of Santurkar et al. 2018 that bnrepro's experiments can test is listed in
[`configs/claims.yaml`](../configs/claims.yaml) with the metric, how it is reduced over training, the test and the
number of seeds it needs. A claim that can be read more than one way (on the spikes and on typical steps, by the
ℓ2 difference and by the cosine, at each learning rate, at several steps of a staircase) has one row per reading,
so that it shows where it holds and where it does not.

Verdicts, per row:
- **reproduced**: the test passes for every seed, and the band mean ± sd over seeds lies on the passing side;
- **not reproduced**: the test fails for every seed, and the band lies on the failing side;
- **inconclusive**: the seeds disagree, the band overlaps the threshold, or there are fewer seeds than required;
- **not run**: no stored metrics for it; the command that makes them is given.

"Ours" gives each side as mean ± sd over the seeds and, for a comparison, the band of the tested statistic
(A / B or A − B per seed; geometric mean ± sd for ratios). Most results come from reduced CPU configurations,
not the papers' full protocols: each figure's section says which, so a verdict is about that protocol."""


def fmt(x: float, never: bool = False) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    if np.isinf(x):
        return "never" if never and x > 0 else ("∞" if x > 0 else "−∞")
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        mantissa, exp = f"{x:.2e}".split("e")
        return f"{mantissa}e{int(exp)}"
    if abs(x) >= 1000:
        return f"{float(f'{x:.3g}'):,.0f}"  # 3 significant digits, with a thousands separator: 2,040
    return f"{x:.3g}"


def mean_sd(values: list[float], never: bool) -> str:
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return "n/a"
    finite = v[np.isfinite(v)]
    if len(finite) < len(v):  # "never" (or NaN) in some seeds: say how many, and the rest as they are
        odd = Counter(fmt(x, never) for x in v[~np.isfinite(v)])
        parts = [f"{k} ×{n}" for k, n in sorted(odd.items())] + [fmt(x, never) for x in finite]
        return ", ".join(parts)
    if len(v) == 1:
        return fmt(float(v[0]))
    return f"{fmt(float(v.mean()))} ± {fmt(float(v.std(ddof=1)))}"


def side_label(claim: Claim, side: dict) -> str:
    parts = [label(str(v)) if k == "variant" else f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
             for k, v in side.items()]
    return ", ".join(parts) or "runs"


def ours(o: Outcome) -> str:
    if o.verdict == "not run":
        return "—"
    c = o.claim
    never = c.reduce["how"] == "steps_to"
    seeds = list(o.stats)
    a = mean_sd([o.a[s] for s in seeds], never)
    if c.b is None:
        return f"{a} (n={o.n})"
    b = mean_sd([o.b[s] for s in seeds], never)
    band = spread(c.test.stat, list(o.stats.values()))
    stat = c.test.stat
    tail = (f"{stat} {fmt(band[0])}–{fmt(band[1])}" if band and band[0] != band[1] else
            f"{stat} {mean_sd(list(o.stats.values()), False)}")
    return f"{side_label(c, c.a)}: {a} · {side_label(c, c.b)}: {b} · {tail} (n={o.n})"


def test_text(c: Claim) -> str:
    return c.test.describe(side_label(c, c.a), side_label(c, c.b) if c.b is not None else None)


def verdict_text(o: Outcome) -> str:
    v = f"**{o.verdict}**" if o.verdict == "not reproduced" else o.verdict
    reason = f"{o.reason}; run `{o.claim.command}`" if o.verdict == "not run" else o.reason
    return f"{v} ({reason})" if reason else v


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def anchor(figure: Figure) -> str:
    return f"fig-{figure.id.replace('_', '-')}"


def counts_line(outcomes: list[Outcome]) -> str:
    n = Counter(o.verdict for o in outcomes)
    return (f"**{len(outcomes)} claims: {n['reproduced']} reproduced, {n['not reproduced']} not reproduced, "
            f"{n['inconclusive']} inconclusive, {n['not run']} not run.**")


def by_source(outcomes: list[Outcome]) -> list[str]:
    lines = ["| source | " + " | ".join(VERDICTS) + " |", "|---|" + "---|" * len(VERDICTS)]
    for key, name in SOURCES.items():
        mine = [o for o in outcomes if o.claim.source.startswith(key)]
        if mine:
            n = Counter(o.verdict for o in mine)
            lines.append(f"| {name} | " + " | ".join(str(n[v]) for v in VERDICTS) + " |")
    return lines


def provenance(figure: Figure, runs: pd.DataFrame | None) -> str:
    if runs is None:
        return f"No stored results in `results/{figure.results}/`: run `{figure.command}`."
    commits = sorted({str(c)[:8] for c in runs["git_commit"].dropna()}) if "git_commit" in runs else []
    dirty = bool(runs["git_dirty"].fillna(False).astype(bool).any()) if "git_dirty" in runs else False
    code = ", ".join(f"`{c}`" for c in commits) or "unknown"
    code += " with uncommitted changes (each run keeps its code.diff)" if dirty else " (clean tree)"
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(Counter(runs.get("status", pd.Series(dtype=str))).items()))
    seeds = sorted(int(s) for s in runs["seed"].unique()) if "seed" in runs else []
    experiments = ", ".join(f"`{e}`" for e in sorted(runs["experiment"].astype(str).unique())) \
        if "experiment" in runs else "unknown"
    return (f"Command: `{figure.command}` (experiment {experiments}). Code: commit {code}. Data: {data_text(runs)}. "
            f"Runs: {len(runs)} ({statuses}), seeds {', '.join(map(str, seeds))}. "
            f"Protocol: {' '.join(figure.protocol.split())}")


def data_text(runs: pd.DataFrame) -> str:
    return {"synthetic": "synthetic (generated from `data.seed`)", "official": "official",
            "unofficial": "UNOFFICIAL (a copy that fails the official checksums; see the data notes)",
            "mixed": "mixed official and unofficial"}[data_kind(runs)]


def summary_table(outcomes: list[Outcome]) -> list[str]:
    lines = ["| claim | statement | reading | paper | ours | test | verdict |", "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        c = o.claim
        lines.append(f"| [{c.id}](#{anchor(c.figure)}) | {cell(c.claim)} | {cell(c.reading)} | {cell(c.paper) or '—'}"
                     f" | {cell(ours(o))} | {cell(test_text(c))} | {cell(verdict_text(o))} |")
    return lines


def figure_section(figure: Figure, outcomes: list[Outcome], runs: pd.DataFrame | None, image_exists: bool) -> list[str]:
    lines = [f'<a id="{anchor(figure)}"></a>', "", f"### {figure.title}", ""]
    image = f"{figure.results}/{figure.file}"
    lines.append(f"![{figure.title}]({image})" if image_exists else
                 f"*Figure not drawn yet (`{image}`): `make figures` draws it from the stored metrics.*")
    lines += ["", f"**What it shows.** {' '.join(figure.shows.split())}", "",
              f"**Provenance.** {provenance(figure, runs)}", ""]
    if outcomes:
        lines += ["| claim | source | statement | reading | ours | test | verdict |", "|---|---|---|---|---|---|---|"]
        for o in outcomes:
            c = o.claim
            note = f" {c.note}" if c.note else ""
            lines.append(f"| {c.id} | {cell(c.source)} | {cell(c.claim + note)} | {cell(c.reading)} | {cell(ours(o))}"
                         f" | {cell(test_text(c))} | {cell(verdict_text(o))} |")
        lines.append("")
    return lines


def render(figures: list[Figure], outcomes: list[Outcome], runs: dict[str, pd.DataFrame | None],
           images: dict[str, bool], untested: list[Untested] = ()) -> str:
    lines = ["# Claims about batch normalization, judged from stored metrics", "", INTRO, "", counts_line(outcomes),
             "", *by_source(outcomes), ""]
    not_run = [o for o in outcomes if o.verdict == "not run"]
    if not_run:
        commands = sorted({o.claim.command for o in not_run})
        lines += [f"Not run: {len(not_run)} claim(s); their data comes from " +
                  ", ".join(f"`{c}`" for c in commands) + ".", ""]
    lines += ["## Summary", "", *summary_table(outcomes), "", "## Figures", ""]
    for f in figures:
        mine = [o for o in outcomes if o.claim.figure.id == f.id]
        lines += figure_section(f, mine, runs.get(f.results), images.get(f.id, False))
    if untested:
        lines += ["## Not tested here yet", "",
                  "Claims of the article and the papers that no experiment here tests yet, so they have no verdict:",
                  "",
                  "| source | claim | why not |", "|---|---|---|"]
        lines += [f"| {cell(u.source)} | {cell(u.claim)} | {cell(u.why)} |" for u in untested]
    return "\n".join(lines).rstrip() + "\n"
