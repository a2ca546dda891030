"""The report's HTML comes from Jinja2 templates (`templates/`) with autoescape on: every value
a template prints is escaped unless it is `Markup`, so a hostile file name or class name shows
as text. The only markup made outside the templates is the figures' SVG (`jaggy.figures`, in
which every string is XML-escaped), wrapped by `svg_markup`.
"""

from __future__ import annotations

import math
import re

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


def number(value: object, digits: int = 3) -> str:
    """A number for display ('–' when missing or not finite; text is shown as it is)."""
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "–"
    if digits == 0:
        return str(round(v))
    return f"{v:.{digits}f}"


def slug(text: object) -> str:
    """A safe fragment for an element id ('black@117' -> 'black-117')."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-").lower() or "x"


def svg_markup(svg: str | None) -> Markup:
    """A figure's SVG (from `jaggy.figures`) for a template: printed as markup, not text."""
    return Markup(svg or "")


_ENVIRONMENT = Environment(
    loader=PackageLoader("jaggy.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENVIRONMENT.filters["number"] = number
_ENVIRONMENT.filters["slug"] = slug
_ENVIRONMENT.filters["thousands"] = lambda v: "–" if v is None else f"{int(v):,}"


def render_template(name: str, **context: object) -> Markup:
    """Render `templates/<name>` (autoescaped) and return its markup for the page.

    Templates may import the shared macros: `{% import "_macros.html.j2" as m %}` gives
    `m.note(text)`, `m.table(header, rows, titles)`, `m.kv(pairs)`, `m.value_ci(entry)`,
    `m.run_heading(run)` and `m.cell(value)` (see that file).
    """
    return Markup(_ENVIRONMENT.get_template(name).render(**context).strip())
