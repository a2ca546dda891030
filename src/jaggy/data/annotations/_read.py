"""Reading an annotation file in any of the FORMATS: the format guessed from the name or
contents, one reader per format."""

from __future__ import annotations

from pathlib import Path

from ._coco import read_coco
from ._imagenet_csv import read_imagenet_csv
from ._table import (
    AnnotationError,
    Annotations,
)
from ._voc import read_voc
from ._yolo import read_yolo

FORMATS = ("coco", "voc", "imagenet-csv", "yolo")

_ALIASES = {"imagenet-xml": "voc", "imagenet_csv": "imagenet-csv", "pascal": "voc"}


def guess_format(path: str | Path) -> str:
    """The format of `path` from its name or contents: .json -> coco, .csv -> imagenet-csv,
    .xml or a folder of .xml -> voc, a folder of .txt -> yolo."""
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"annotations '{path}' do not exist")
    if path.is_file():
        suffix = path.suffix.lower()
        guess = {".json": "coco", ".csv": "imagenet-csv", ".xml": "voc"}.get(suffix)
        if guess is None:
            raise AnnotationError(
                f"cannot tell the format of '{path}' from its name; pass --format "
                f"({', '.join(FORMATS)})"
            )
        return guess
    if next(path.rglob("*.xml"), None) is not None:
        return "voc"
    if next(path.rglob("*.txt"), None) is not None:
        return "yolo"
    raise AnnotationError(
        f"'{path}' holds no .xml (VOC) or .txt (YOLO) files; pass an annotation file or folder"
    )


def check_format(name: str) -> str:
    """A format name (aliases accepted) as one of FORMATS, else AnnotationError."""
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        raise AnnotationError(f"unknown --format '{name}'; choose one of: {', '.join(FORMATS)}")
    return name


def read_annotations(
    path: str | Path, *, format: str | None = None, images: str | Path | None = None
) -> Annotations:
    """Read an annotation file or folder.

    Args:
        path: the file (COCO JSON, ImageNet CSV, one VOC XML) or folder (VOC XML, YOLO txt).
        format: one of FORMATS; guessed from `path` when None.
        images: the folder of the images, where a format carries no image sizes (ImageNet
            CSV, YOLO); their headers are read lazily, only for the images that have boxes.
    """
    fmt = check_format(format) if format else guess_format(path)
    if not Path(path).exists():
        raise AnnotationError(f"annotations '{path}' do not exist")
    if fmt == "coco":
        return read_coco(path)
    if fmt == "voc":
        return read_voc(path)
    if fmt == "imagenet-csv":
        return read_imagenet_csv(path, images)
    return read_yolo(path, images)
