"""REPORT.html: the report's pages as one self-contained HTML file, figures inline, readable with no network and
no Markdown viewer. CommonMark with tables (markdown-it-py); images are embedded from the results folder and the
links between pages become links between the file's sections."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from markdown_it import MarkdownIt

STYLE = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;line-height:1.4}"
         "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;"
         "vertical-align:top}th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:0 2px}"
         "section{border-top:2px solid #888;margin-top:3em}")


def anchor_of(target: str) -> str:
    """A link between pages becomes a link to that page's section of the one HTML file."""
    if target.startswith("#") or "://" in target:
        return target
    return "#page-" + Path(target.split("#")[0]).stem


def to_html(pages: dict[str, str], results_dir: Path) -> str:
    md = MarkdownIt("commonmark").enable("table")
    body = []
    for page, text in pages.items():
        tokens = md.parse(text)
        for token in (child for t in tokens for child in t.children or []):
            if token.type == "link_open":
                token.attrSet("href", anchor_of(str(token.attrGet("href"))))
            elif token.type == "image":
                path = (results_dir / Path(page).parent / str(token.attrGet("src"))).resolve()
                if path.is_file():
                    token.attrSet("src", f"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}")
                else:
                    token.type, token.children = "html_inline", None
                    token.content = f"<em>(missing image {html.escape(str(token.attrGet('src')))})</em>"
        body.append(f'<section id="page-{Path(page).stem}">\n{md.renderer.render(tokens, md.options, {})}</section>')
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>bnrepro report</title><style>{STYLE}"
            f"</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
