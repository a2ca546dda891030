"""COCO instances JSON: `images` (id, file_name, width, height), `categories` (id, name) and
`annotations` (image_id, category_id, bbox = [x, y, w, h] in pixels, top-left corner).

The `area` field is the segmentation mask's area, not the box's, so it is ignored: box sizes
come from `bbox`. Crowd annotations (`iscrowd` 1) are boxes like any other, as in
`pycocotools.coco.COCO`'s index.

The file is decoded by msgspec against the few fields a box needs: segmentations and every
other field are skipped while parsing instead of being built as Python objects, which is what
makes a million boxes fast and small to read. A file that is not valid JSON is parsed again
by the standard library only to name the line and column of the problem.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import msgspec
import numpy as np

from ._table import AnnotationError, Annotations, keep_boxes


class _Image(msgspec.Struct, gc=False):
    id: int | str
    file_name: str
    width: float | None = None  # missing sizes: the image's boxes are skipped
    height: float | None = None


class _Category(msgspec.Struct, gc=False):
    id: int | str
    name: str


class _Annotation(msgspec.Struct, gc=False):
    image_id: int | str
    category_id: int | str
    bbox: tuple[float, float, float, float]
    id: int | str | None = None


class _File(msgspec.Struct, gc=False):
    images: list[_Image]
    annotations: list[_Annotation]
    categories: list[_Category] | None = None


_DECODER = msgspec.json.Decoder(_File)


def read_coco(path: str | Path) -> Annotations:
    """Read a COCO instances file. Raises AnnotationError naming the line and column (invalid
    JSON) or the record (`$.annotations[12].bbox`: a field missing or of the wrong type)."""
    path = Path(path)
    coco = _decode(path)
    images, annotations = coco.images, coco.annotations

    image_keys = [image.id for image in images]
    image_index = {key: i for i, key in enumerate(image_keys)}
    if len(image_index) != len(image_keys):
        raise AnnotationError(f"{path}: 'images' lists the same id twice")
    file_names = [image.file_name for image in images]
    widths = np.array([image.width for image in images], dtype=np.float64)  # None -> NaN
    heights = np.array([image.height for image in images], dtype=np.float64)

    if coco.categories is None:  # a file without categories: classes named by their ids
        class_keys = sorted({a.category_id for a in annotations}, key=str)
        class_names = [str(c) for c in class_keys]
    else:
        class_keys = [c.id for c in coco.categories]
        class_names = _unique_names([c.name for c in coco.categories], class_keys)
    class_index = {key: i for i, key in enumerate(class_keys)}

    n = len(annotations)
    box_image = np.fromiter((image_index.get(a.image_id, -1) for a in annotations), np.int64, n)
    box_class = np.fromiter((class_index.get(a.category_id, -1) for a in annotations), np.int64, n)
    xywh = np.array([a.bbox for a in annotations], dtype=np.float64).reshape(n, 4)

    def describe(i: int) -> str:
        return f"{path.name}: annotations[{i}] (id {annotations[i].id})"

    x, y, w, h = xywh.T
    return keep_boxes(
        str(path),
        "coco",
        file_names,
        widths,
        heights,
        class_names,
        box_image,
        box_class,
        (x, y, x + w, y + h),
        Counter(),
        {},
        describe,
    )


def _decode(path: Path) -> _File:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnnotationError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if message.endswith("- at `$`") or " - at " not in message:
            raise AnnotationError(
                f"{path}: not a COCO instances file (expected an object with 'images', "
                f"'annotations' and 'categories' lists: {message}); pass --format if it is "
                "another format"
            ) from None
        raise AnnotationError(f"{path}: {message}") from None
    except msgspec.DecodeError as exc:
        raise AnnotationError(_syntax_error(path, data, exc)) from None


def _syntax_error(path: Path, data: bytes, exc: Exception) -> str:
    """Where the JSON is broken, as file:line:column (the standard library's parser says)."""
    try:
        json.loads(data)
    except json.JSONDecodeError as err:
        return f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg}); fix or regenerate it"
    except UnicodeDecodeError as err:
        return f"{path}: not UTF-8 JSON ({err.reason})"
    except (ValueError, RecursionError) as err:
        return f"{path}: not valid JSON ({err})"
    return f"{path}: not strict JSON ({exc}); NaN and Infinity are not JSON numbers"


def _unique_names(names: list[str], keys: list) -> list[str]:
    """Category names, with the id appended where two categories share a name."""
    counts = Counter(names)
    return [n if counts[n] == 1 else f"{n} ({k})" for n, k in zip(names, keys, strict=True)]
