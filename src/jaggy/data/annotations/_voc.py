"""Pascal VOC XML and the ImageNet localisation XML (the same schema): one file per image,

    <annotation><filename>…</filename><size><width/><height/></size>
      <object><name>…</name><bndbox><xmin/><ymin/><xmax/><ymax/></bndbox></object>…

Corners are 1-based pixel indices, both ends included, so a box from xmin to xmax covers
pixels xmin - 1 … xmax - 1 of a 0-based image: x0 = xmin - 1, x1 = xmax (width xmax - xmin + 1).
Files come from outside, so they are parsed with defusedxml (no entity expansion, no
external references).
"""

from __future__ import annotations

from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError
from defusedxml.ElementTree import parse as parse_xml

from ._synsets import check_synset
from ._table import UNKNOWN_CLASS, AnnotationError, Annotations, BoxCollector


def read_voc(path: str | Path) -> Annotations:
    """Read one VOC/ImageNet XML file or a folder of them (searched recursively, sorted)."""
    path = Path(path)
    files = sorted(path.rglob("*.xml")) if path.is_dir() else [path]
    if not files:
        raise AnnotationError(f"{path}: no .xml files found")
    collector = BoxCollector()
    for file in files:
        _read_file(file, collector)
    return collector.finish(str(path), "voc")


def _read_file(file: Path, collector: BoxCollector) -> None:
    try:
        root = parse_xml(file).getroot()
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise AnnotationError(
            f"{file}:{line}:{column}: not well-formed XML ({exc}); fix or regenerate the file"
        ) from None
    except DefusedXmlException as exc:
        raise AnnotationError(
            f"{file}: refused, the XML declares entities or external references "
            f"({type(exc).__name__}); annotation files need neither"
        ) from None
    except OSError as exc:
        raise AnnotationError(f"cannot read {file}: {exc.strerror or exc}") from None
    if root.tag != "annotation":
        raise AnnotationError(f"{file}: root element is <{root.tag}>, expected <annotation> (VOC)")
    name = (root.findtext("filename") or "").strip()
    if not name:
        raise AnnotationError(f"{file}: no <filename>")
    width = _number(file, root, "size/width", optional=True)
    height = _number(file, root, "size/height", optional=True)
    image = collector.image(name, width, height)
    for k, obj in enumerate(root.iter("object")):
        where = f"{file.name}: object {k}"
        class_name = (obj.findtext("name") or "").strip()
        if not class_name:
            raise AnnotationError(f"{file}: object {k} has no <name>")
        box = obj.find("bndbox")
        if box is None:
            raise AnnotationError(f"{file}: object {k} ({class_name}) has no <bndbox>")
        corners = [_number(file, box, tag, what=f"object {k}") for tag in _CORNERS]
        if not check_synset(class_name):
            collector.skip(UNKNOWN_CLASS, where)
            continue
        xmin, ymin, xmax, ymax = corners
        collector.add(image, collector.class_id(class_name), xmin - 1, ymin - 1, xmax, ymax, where)


_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _number(file: Path, element, tag: str, *, what: str = "", optional: bool = False):
    text = element.findtext(tag)
    if text is None or not text.strip():
        if optional:
            return None
        raise AnnotationError(f"{file}: {what} has no <{tag}>".replace(":  has", ": has"))
    try:
        return float(text)
    except ValueError:
        raise AnnotationError(
            f"{file}: {what + ' ' if what else ''}<{tag}> is {text.strip()[:40]!r}, not a number"
        ) from None
