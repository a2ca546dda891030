"""SVG written directly, for figures whose layout is fixed pixel geometry (no layout engine;
text widths from matplotlib's font metrics where a layout needs them), with the conventions of
`_svg_export`: 1 unit = 1 CSS px, numbers rounded to 0.01 px, text kept as text and drawn by
the page's font, every string XML-escaped, no ids (nothing refers to one), the same bytes for
the same input; at a small fraction of matplotlib's cost."""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from PIL import Image

SVG_NS = "http://www.w3.org/2000/svg"


def num(value: float) -> str:
    """A coordinate rounded to 0.01 px, without trailing zeros ('-0' written as '0')."""
    text = f"{round(float(value), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def text_content(text: str) -> str:
    """Text escaped for an element's content."""
    return escape(str(text))


_ESCAPED_IN_ATTRIBUTES = re.compile('[&<>"\n\r\t]')


def attribute(text: str) -> str:
    """Text escaped and quoted for an attribute value."""
    text = str(text)
    if _ESCAPED_IN_ATTRIBUTES.search(text) is None:  # most values (numbers, styles): as is,
        return f'"{text}"'  # which is what quoteattr returns for them, found faster
    return quoteattr(text)


def element(tag: str, content: str = "", **attributes: object) -> str:
    """`<tag a="..."...>content</tag>` (self-closed when empty); attribute names use '-' for
    '_' and a trailing '_' is dropped (`class_`); None values are left out."""
    attrs = "".join(
        f" {name.rstrip('_').replace('_', '-')}={attribute(value)}"
        for name, value in attributes.items()
        if value is not None
    )
    return f"<{tag}{attrs}>{content}</{tag}>" if content else f"<{tag}{attrs} />"


def segment(x0: str, y0: str, x1: str, y1: str, style: str) -> str:
    """A straight line from (x0, y0) to (x1, y1) as a <path>; coordinates formatted by `num`."""
    return element("path", d=f"M {x0} {y0} L {x1} {y1}", style=style)


def text_at(content: object, x: str, y: str, style: str) -> str:
    """A <text> of `content` (escaped) at (x, y); coordinates formatted by `num`."""
    return element("text", text_content(content), style=style, x=x, y=y)


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


@functools.lru_cache(maxsize=4096)
def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width in px of `text` at `size` px in matplotlib's sans-serif font, as matplotlib lays
    it out (the page draws it in its own font, close in width)."""
    from matplotlib.font_manager import FontProperties

    prop = FontProperties(family="sans-serif", size=size, weight="bold" if bold else "normal")
    return float(_text_to_path().get_text_width_height_descent(text, prop, ismath=False)[0])


@functools.lru_cache(maxsize=1)
def _text_to_path():
    from matplotlib.textpath import TextToPath

    return TextToPath()


def image_data_uri(pixels: np.ndarray | Image.Image, format: str = "PNG", quality: int = 85) -> str:
    """An image (uint8 array [H, W, 3] or PIL image) as a `data:` URI (PNG, or JPEG for
    photographs)."""
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels, "RGB")
    buffer = io.BytesIO()
    if format.upper() == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=quality, optimize=True)
        mime = "image/jpeg"
    else:
        image.save(buffer, "PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"
