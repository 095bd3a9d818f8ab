"""REPORT.html: the report's pages as one self-contained HTML file, figures inline, readable with no network and
no Markdown viewer. It converts only the Markdown that render.py writes (headings, paragraphs, lists, tables,
images, links, bold, italics, code)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;line-height:1.4}"
         "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;"
         "vertical-align:top}th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:0 2px}"
         "section{border-top:2px solid #888;margin-top:3em}")


def inline(text: str, images: Path, page: str) -> str:
    """Bold, italics, code, images (embedded from the results folder) and links (to the pages' sections)."""
    out = html.escape(text, quote=False).replace("\\|", "|")

    def image(m: re.Match) -> str:
        path = (images / Path(page).parent / m.group(2)).resolve()
        if not path.is_file():
            return f"<em>(missing image {html.escape(m.group(2))})</em>"
        data = base64.b64encode(path.read_bytes()).decode()
        return f'<img alt="{m.group(1)}" src="data:image/png;base64,{data}">'

    out = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", image, out)
    out = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", lambda m: f'<a href="{anchor_of(m.group(2))}">{m.group(1)}</a>', out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    return re.sub(r"(?<![\w*])\*([^*]+)\*(?![\w*])", r"<i>\1</i>", out)


def anchor_of(target: str) -> str:
    """A link between pages becomes a link to that page's section of the one HTML file."""
    if target.startswith("#") or "://" in target:
        return target
    return "#page-" + Path(target.split("#")[0]).stem


def to_html(pages: dict[str, str], results_dir: Path) -> str:
    body = []
    for page, text in pages.items():
        body.append(f'<section id="page-{Path(page).stem}">')
        lines, i = text.splitlines(), 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("|"):
                rows = []
                while i < len(lines) and lines[i].startswith("|"):
                    rows.append(re.split(r"(?<!\\)\|", lines[i].strip())[1:-1])
                    i += 1
                head, rest = rows[0], rows[2:]  # rows[1] is the |---| line
                body.append("<table><tr>" + "".join(f"<th>{inline(c.strip(), results_dir, page)}</th>" for c in head)
                            + "</tr>" + "".join("<tr>" + "".join(f"<td>{inline(c.strip(), results_dir, page)}</td>"
                                                                  for c in r) + "</tr>" for r in rest) + "</table>")
                continue
            if m := re.match(r"(#+) (.*)", line):
                body.append(f"<h{len(m.group(1))}>{inline(m.group(2), results_dir, page)}</h{len(m.group(1))}>")
            elif line.startswith(("- ", "  - ")):
                body.append(f"<ul><li>{inline(line.strip()[2:], results_dir, page)}</li></ul>")
            elif line.startswith("<a id="):
                body.append(line)
            elif line.strip():
                body.append(f"<p>{inline(line, results_dir, page)}</p>")
            i += 1
        body.append("</section>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>bnrepro report</title><style>{STYLE}"
            f"</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
