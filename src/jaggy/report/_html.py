"""HTML building blocks of the report: escaping, numbers, tables, the page around the sections.

Rule: every string that comes from data (file names, class names, model specs, JSON values)
goes through `esc` before it reaches the page. Markup is only ever built from literals here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from html import escape

from .. import __version__


def esc(value: object) -> str:
    """HTML-escape any value's text (quotes included, so it is safe in attributes too)."""
    return escape("" if value is None else str(value), quote=True)


def slug(text: str) -> str:
    """A safe fragment for an element id ('black@117' -> 'black-117')."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower() or "x"


def number(value: object, digits: int = 3) -> str:
    """A number for display ('–' when missing or not finite)."""
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if not math.isfinite(v):
        return "–"
    if abs(v - round(v)) < 1e-12 and abs(v) < 1e15 and digits == 0:
        return str(int(round(v)))
    return f"{v:.{digits}f}"


def metric_digits(metric: str) -> int:
    return 2 if metric in ("top5_distance", "ms_per_image") else 3


def value_ci(entry: dict | None, digits: int = 3) -> str:
    """'value [lo, hi]' markup from a {"value", "ci95"} entry."""
    if not isinstance(entry, dict) or entry.get("value") is None:
        return "–"
    text = number(entry["value"], digits)
    ci = entry.get("ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
        text += f' <span class="ci">[{number(ci[0], digits)}, {number(ci[1], digits)}]</span>'
    return text


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    header_titles: Sequence[str] | None = None,
    css_class: str = "data",
    row_classes: Sequence[str] | None = None,
) -> str:
    """A table from already-escaped cell markup (header labels are escaped here)."""
    head = "".join(
        f'<th title="{esc(header_titles[i])}">{esc(h)}</th>'
        if header_titles and header_titles[i]
        else f"<th>{esc(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return (
        f'<div class="table-wrap"><table class="{esc(css_class)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def key_values(pairs: Iterable[tuple[str, object]]) -> str:
    """A two-column definition table of (label, value); values are escaped."""
    rows = "".join(
        f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>'
        for k, v in pairs
        if v not in (None, "", [], {})
    )
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#dde1e8; --accent:#2456a6; --win:#1e7b34;
  --bg:#ffffff; --panel:#f6f7f9; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",
  Arial,sans-serif; color:var(--fg); background:var(--bg); }
header.top { padding:20px 32px 12px; border-bottom:1px solid var(--line); background:var(--panel); }
header.top h1 { margin:0 0 4px; font-size:22px; }
header.top p { margin:2px 0; color:var(--muted); }
nav.toc { padding:8px 32px; border-bottom:1px solid var(--line); font-size:13px; }
nav.toc a { margin-right:14px; color:var(--accent); text-decoration:none; white-space:nowrap; }
main { padding:8px 32px 48px; max-width:1400px; }
section.report { margin-top:28px; }
section.report > h2 { font-size:18px; border-bottom:2px solid var(--line); padding-bottom:4px; }
section.protocol { margin:18px 0 30px; padding-top:4px; border-top:1px dashed var(--line); }
h3 { font-size:16px; margin:16px 0 6px; }
h4 { font-size:14px; margin:12px 0 4px; color:var(--muted); }
code, .mono { font-family: ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; }
.table-wrap { overflow-x:auto; }
table.data { border-collapse:collapse; margin:6px 0 12px; font-size:13px; }
table.data th, table.data td { border-bottom:1px solid var(--line); padding:4px 10px;
  text-align:right; white-space:nowrap; }
table.data th:first-child, table.data td:first-child { text-align:left; }
table.data thead th { background:var(--panel); position:sticky; top:0; }
table.data td.text, table.data th.text { text-align:left; white-space:normal; }
.win { color:var(--win); font-weight:700; }
.win::before { content:"\\2605 "; }
table.wrap td { white-space:normal; text-align:left; max-width:520px; overflow-wrap:anywhere; }
.overview { max-width:660px; }
.wall-item { margin:0; }
.wall-figure { margin:0 0 12px; }
.wall-figure figcaption { font-size:12px; margin-bottom:4px; max-width:520px; }
.ci { color:var(--muted); font-size:12px; }
table.kv { border-collapse:collapse; font-size:13px; margin:4px 0 10px; }
table.kv th { text-align:left; color:var(--muted); font-weight:500; padding:2px 14px 2px 0;
  vertical-align:top; white-space:nowrap; }
table.kv td { padding:2px 0; word-break:break-all; }
p.note { color:var(--muted); font-size:13px; margin:4px 0 8px; }
.figure-row { display:flex; flex-wrap:wrap; gap:18px; align-items:flex-start; }
.image-grid { display:flex; flex-wrap:wrap; gap:14px 22px; margin-top:8px; }
.image-card { border:1px solid var(--line); border-radius:6px; padding:8px; background:#fff; }
.image-card .caption { font-size:12px; margin-bottom:4px; max-width:484px; overflow-wrap:anywhere; }
.swatch { display:inline-block; width:12px; height:12px; border-radius:2px;
  vertical-align:-1px; margin-right:6px; }
.strip { display:flex; gap:3px; }
.strip figure { margin:0; text-align:center; font-size:10px; color:var(--muted); }
.strip img { display:block; border:3px solid transparent; border-radius:3px; }
.strip img.right { border-color:#2b9348; }
.strip img.wrong { border-color:#d62728; }
.legend-wall span { display:inline-block; margin-right:14px; font-size:12px; }
.run-tag { font-size:12px; color:var(--muted); font-weight:500; }
details { margin:6px 0; }
summary { cursor:pointer; color:var(--accent); }
footer { color:var(--muted); font-size:12px; padding:16px 32px; border-top:1px solid var(--line); }
"""


def page(
    title: str, subtitle_lines: Sequence[str], toc: Sequence[tuple[str, str]], body: str
) -> str:
    """The whole document. `toc` holds (element id, label); strings are escaped here."""
    links = "".join(f'<a href="#{esc(i)}">{esc(label)}</a>' for i, label in toc)
    subtitle = "".join(f"<p>{esc(line)}</p>" for line in subtitle_lines)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header class="top"><h1>{esc(title)}</h1>{subtitle}</header>'
        f'<nav class="toc">{links}</nav><main>{body}</main>'
        f"<footer>Written by jaggy {esc(__version__)}. Protocols and metrics follow Azulay &amp; "
        "Weiss, “Why do deep convolutional networks generalize so poorly to small image "
        "transformations?”, JMLR 2019. Intervals are bootstrap 95% confidence intervals over "
        "images.</footer></body></html>\n"
    )
