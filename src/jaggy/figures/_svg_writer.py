"""SVG written directly, for figures whose layout is fixed pixel geometry (no layout engine, no
text measurement): the same conventions as `_svg_export` (1 unit = 1 CSS px, numbers rounded
to 0.01 px, text kept as text and drawn by the page's font, every string XML-escaped, no ids
unless something refers to them), at a small fraction of matplotlib's cost."""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

SVG_NS = "http://www.w3.org/2000/svg"


def num(value: float) -> str:
    """A coordinate rounded to 0.01 px, without trailing zeros ('-0' written as '0')."""
    text = f"{round(float(value), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def text_content(text: str) -> str:
    """Text escaped for an element's content."""
    return escape(str(text))


def attribute(text: str) -> str:
    """Text escaped and quoted for an attribute value."""
    return quoteattr(str(text))


def element(tag: str, content: str = "", **attributes: object) -> str:
    """`<tag a="..."...>content</tag>` (self-closed when empty); attribute names use '-' for
    '_' and a trailing '_' is dropped (`class_`); None values are left out."""
    attrs = "".join(
        f" {name.rstrip('_').replace('_', '-')}={attribute(value)}"
        for name, value in attributes.items()
        if value is not None
    )
    return f"<{tag}{attrs}>{content}</{tag}>" if content else f"<{tag}{attrs} />"


def titled(title: str | None, markup: str) -> str:
    """`markup` in a group with a hover <title> (or as it is without a title)."""
    if title is None:
        return markup
    return f"<g><title>{text_content(title)}</title>{markup}</g>"


def svg_document(
    width: float, height: float, body: Iterable[str], *, css_class: str, description: str = ""
) -> str:
    """The <svg> element (no XML prolog) of a figure `width` x `height` px."""
    desc = f"<desc>{text_content(description)}</desc>" if description else ""
    w, h = num(width), num(height)
    return (
        f'<svg xmlns="{SVG_NS}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'stroke-linejoin="round" stroke-linecap="butt" class={attribute(css_class)} '
        f'role="img">{desc}{"".join(body)}</svg>'
    )
