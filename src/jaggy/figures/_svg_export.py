"""matplotlib figures as SVG text for one self-contained HTML page.

matplotlib draws every figure; this module only makes its SVG fit a page that holds many:
- text stays text (`svg.fonttype: none`): the page's font draws it, a reader can search and
  copy it, and no glyph outlines inflate the file;
- the same figure gives the same bytes: ids come from a fixed `svg.hashsalt`, no date or tool
  metadata is written, and coordinates are rounded to 0.01 px;
- ids are unique in the page: each figure's ids get a prefix taken from a hash of the figure,
  and ids that nothing refers to are dropped;
- hover titles: an artist given a `gid` gets an SVG <title> (one for the whole artist, or one
  per point of a scatter), and an image given a `gid` can have its pixels replaced by a data
  URI (a JPEG photograph is far smaller than the PNG matplotlib writes).

Sizes: figures are made at 72 dpi, so one matplotlib point is one CSS pixel of the page.
"""

from __future__ import annotations

import hashlib
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
_SVG = f"{{{SVG_NS}}}"
_XLINK_HREF = f"{{{XLINK_NS}}}href"
ET.register_namespace("", SVG_NS)

DPI = 72  # 1 pt = 1 px
# What every report figure shares. Fonts are laid out with matplotlib's metrics; the page's
# own sans-serif font draws the text (the SVG carries no font-family of its own).
STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "jaggy",
    "svg.image_inline": True,
    "font.size": 10,
    "font.family": "sans-serif",
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.edgecolor": "#999999",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e5ea",
    "grid.linewidth": 0.8,
    "xtick.color": "#555555",
    "ytick.color": "#555555",
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}

_NUMERIC_ATTRIBUTES = (
    "d",
    "x",
    "y",
    "x1",
    "x2",
    "y1",
    "y2",
    "width",
    "height",
    "transform",
    "points",
    "cx",
    "cy",
    "r",
)
_MARKS = {f"{_SVG}use", f"{_SVG}path"}
_FLOAT = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")
_REFERENCE = re.compile(r"url\(#([^)]+)\)")
_FONT_FAMILY = re.compile(r"font-family:[^;]*;?\s*")
_STYLE_SPACE = re.compile(r"\s*([:;])\s*")
_NO_ROTATION = re.compile(r"^rotate\(-?0 [^)]*\)$")


@contextmanager
def svg_style() -> Iterator[None]:
    """matplotlib settings of every report figure (see `STYLE`), for the duration."""
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure `width` x `height` CSS px (not attached to pyplot: nothing to close)."""
    return Figure(figsize=(width / DPI, height / DPI), dpi=DPI)


def _short_number(match: re.Match) -> str:
    value = round(float(match.group(0)), 2)
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _strip_whitespace(element: ET.Element) -> None:
    """Drop the indentation matplotlib writes (text content of text and title is kept)."""
    if element.tag not in (f"{_SVG}text", f"{_SVG}tspan", f"{_SVG}title", f"{_SVG}style"):
        if element.text is not None and not element.text.strip():
            element.text = None
    for child in element:
        if child.tail is not None and not child.tail.strip():
            child.tail = None
        _strip_whitespace(child)


def _title(text: str) -> ET.Element:
    title = ET.Element(f"{_SVG}title")
    title.text = text
    return title


def _add_titles(root: ET.Element, titles: Mapping[str, str | Sequence[str]]) -> None:
    """A <title> for each element whose id is a key: one for the element (a string), or one per
    point inside it (a sequence, in drawing order)."""
    parents = {child: parent for parent in root.iter() for child in parent}
    by_id = {el.get("id"): el for el in root.iter() if el.get("id") in titles}
    for gid, text in titles.items():
        element = by_id.get(gid)
        if element is None:
            raise ValueError(f"no artist with gid '{gid}' in the figure")
        if isinstance(text, str):
            if element.tag != f"{_SVG}g":  # e.g. an <image>: give it a group to hold the title
                parent = parents[element]
                group = ET.Element(f"{_SVG}g")
                parent[list(parent).index(element)] = group
                group.append(element)
                element = group
            element.insert(0, _title(text))
            continue
        marks = list(_marks(element))
        if len(marks) != len(text):
            raise ValueError(f"gid '{gid}': {len(marks)} points drawn, {len(text)} titles given")
        for (parent, mark), point_text in zip(marks, text, strict=True):
            group = ET.Element(f"{_SVG}g")
            parent[list(parent).index(mark)] = group
            group.append(_title(point_text))
            group.append(mark)


def _marks(element: ET.Element) -> Iterator[tuple[ET.Element, ET.Element]]:
    """(parent, mark) of every drawn mark (<use> or <path>) under `element`, in drawing order,
    definitions left out: matplotlib writes a scatter's points either each in its own clip
    group or side by side in one."""
    for child in element:
        if child.tag in _MARKS:
            yield element, child
        elif child.tag != f"{_SVG}defs":
            yield from _marks(child)


def _replace_images(root: ET.Element, images: Mapping[str, str]) -> None:
    for element in root.iter(f"{_SVG}image"):
        gid = element.get("id")
        if gid in images:
            element.set(_XLINK_HREF, images[gid])
            element.attrib.pop("style", None)  # photographs scale smoothly


def _tidy(root: ET.Element) -> None:
    """Remove metadata and the global stylesheet, shorten numbers, keep only needed ids."""
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == f"{_SVG}metadata":
                parent.remove(child)
            elif child.tag == f"{_SVG}defs" and all(c.tag == f"{_SVG}style" for c in child):
                parent.remove(child)  # `*{stroke-linejoin:round}` would style the whole page
    root.set("stroke-linejoin", "round")
    root.set("stroke-linecap", "butt")
    for element in root.iter():
        for name in _NUMERIC_ATTRIBUTES:
            value = element.get(name)
            if value is not None:
                value = _FLOAT.sub(_short_number, value)
                element.set(name, " ".join(value.split()))
        if _NO_ROTATION.match(element.get("transform", "")):
            del element.attrib["transform"]
        style = element.get("style")
        if style is not None:
            style = _STYLE_SPACE.sub(r"\1", _FONT_FAMILY.sub("", style)).strip(" ;")
            if style:
                element.set("style", style)
            else:
                del element.attrib["style"]
        if element.get(_XLINK_HREF) is not None:
            element.set("href", element.attrib.pop(_XLINK_HREF))


def _unwrap_groups(element: ET.Element) -> None:
    """Replace each <g> without attributes or title by its children (matplotlib nests one
    group per artist, tick and label)."""
    children: list[ET.Element] = []
    for child in element:
        _unwrap_groups(child)
        plain = child.tag == f"{_SVG}g" and not child.attrib
        if plain and not any(c.tag == f"{_SVG}title" for c in child):
            children.extend(child)
        else:
            children.append(child)
    element[:] = children


def _prefix_ids(root: ET.Element, prefix: str) -> None:
    referenced: set[str] = set()
    for element in root.iter():
        for name, value in element.attrib.items():
            if name == "href" and value.startswith("#"):
                referenced.add(value[1:])
            elif "url(#" in value:
                referenced.update(_REFERENCE.findall(value))
    for element in root.iter():
        ident = element.get("id")
        if ident is not None:
            if ident in referenced:
                element.set("id", prefix + ident)
            else:
                del element.attrib["id"]
        for name, value in list(element.attrib.items()):
            if name == "href" and value.startswith("#"):
                element.set(name, "#" + prefix + value[1:])
            elif "url(#" in value:
                element.set(name, _REFERENCE.sub(lambda m: f"url(#{prefix}{m.group(1)})", value))


def figure_svg(
    figure: Figure,
    *,
    description: str = "",
    css_class: str = "chart",
    titles: Mapping[str, str | Sequence[str]] | None = None,
    images: Mapping[str, str] | None = None,
    tight: bool = False,
) -> str:
    """A matplotlib figure as an inline <svg> element (a string; no XML prolog).

    Args:
        figure: the figure (drawn under `svg_style()`).
        description: the SVG's accessible description (<desc>).
        css_class: class attribute of the <svg> element.
        titles: {gid: hover text} for whole artists, or {gid: [text per point]} for scatters.
        images: {gid: data URI} replacing the pixels of images drawn with that gid.
        tight: crop (or grow) the figure to what it draws, labels included.

    Returns:
        SVG markup; every string in it is XML-escaped (safe to place in HTML as is).
    """
    buffer = io.StringIO()
    figure.patch.set_visible(False)  # the page is the background
    for axes in figure.axes:
        axes.patch.set_visible(False)
    with svg_style():
        figure.savefig(
            buffer,
            format="svg",
            metadata={"Date": None},
            bbox_inches="tight" if tight else None,
            pad_inches=0.03,
        )
    root = ET.fromstring(buffer.getvalue())
    if titles:
        _add_titles(root, titles)
    if images:
        _replace_images(root, images)
    _tidy(root)
    _strip_whitespace(root)
    _prefix_ids(root, "")  # drop the ids nothing refers to, so their groups can go
    _unwrap_groups(root)
    for name in ("width", "height"):  # matplotlib writes pt; at 72 dpi they are CSS px
        root.set(name, root.get(name, "0").removesuffix("pt"))
    root.attrib.pop("version", None)
    root.set("class", css_class)
    root.set("role", "img")
    if description:
        desc = ET.Element(f"{_SVG}desc")
        desc.text = description
        root.insert(0, desc)
    draft = ET.tostring(root, encoding="unicode")
    prefix = "f" + hashlib.sha256(draft.encode("utf-8")).hexdigest()[:8] + "-"
    _prefix_ids(root, prefix)
    return ET.tostring(root, encoding="unicode")
