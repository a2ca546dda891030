"""COCO instances JSON: `images` (id, file_name, width, height), `categories` (id, name) and
`annotations` (image_id, category_id, bbox = [x, y, w, h] in pixels, top-left corner).

The `area` field is the segmentation mask's area, not the box's, so it is ignored: box sizes
come from `bbox`. Crowd annotations (`iscrowd` 1) are boxes like any other, as in
`pycocotools.coco.COCO`'s index.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from pathlib import Path

import numpy as np

from ._table import AnnotationError, Annotations, keep_boxes


def read_coco(path: str | Path) -> Annotations:
    """Read a COCO instances file. Raises AnnotationError naming the line (invalid JSON) or
    the record (a field missing or of the wrong type)."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise AnnotationError(
            f"{path}: not a COCO instances file (expected an object with 'images', "
            "'annotations' and 'categories' lists); pass --format if it is another format"
        )
    images = data.get("images")
    if not isinstance(images, list):
        raise AnnotationError(f"{path}: no 'images' list (COCO files list every image)")
    categories = data.get("categories")
    annotations = data["annotations"]
    del data

    image_keys = _column(path, images, "images", "id", hashable=True)
    file_names = [str(name) for name in _column(path, images, "images", "file_name")]
    widths = _sizes(path, images, "width")
    heights = _sizes(path, images, "height")
    image_index = {key: i for i, key in enumerate(image_keys)}
    if len(image_index) != len(image_keys):
        raise AnnotationError(f"{path}: 'images' lists the same id twice")
    del images

    if categories is None:  # a file without categories: classes named by their ids
        _check_annotations(path, annotations)
        class_keys = sorted(
            {a[1] for a in annotations if not isinstance(a[1], (list, dict))}, key=str
        )
        class_names = [str(c) for c in class_keys]
    elif not isinstance(categories, list):
        raise AnnotationError(f"{path}: 'categories' is not a list")
    else:
        class_keys = _column(path, categories, "categories", "id", hashable=True)
        names = [str(n) for n in _column(path, categories, "categories", "name")]
        class_names = _unique_names(names, class_keys)
    class_index = {key: i for i, key in enumerate(class_keys)}

    n = len(annotations)
    _check_annotations(path, annotations)
    image_of = [a[0] for a in annotations]
    class_of = [a[1] for a in annotations]
    try:
        box_image = np.fromiter((image_index.get(k, -1) for k in image_of), np.int64, n)
        box_class = np.fromiter((class_index.get(k, -1) for k in class_of), np.int64, n)
    except TypeError:  # an unhashable id
        for i, (a, b) in enumerate(zip(image_of, class_of, strict=True)):
            if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
                raise AnnotationError(
                    f"{path}: annotations[{i}] image_id or category_id is not a number or a string"
                ) from None
        raise
    del image_of, class_of
    xywh = _bboxes(path, annotations)

    def describe(i: int) -> str:
        return f"{path.name}: annotations[{i}] (id {annotations[i][3]})"

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


_ANNOTATION_KEYS = ("image_id", "category_id", "bbox")


def _compact_annotation(record: dict):
    """json object hook: an annotation becomes (image_id, category_id, bbox, id) as soon as it
    is parsed, so its segmentation and other fields are freed at once (a third of the peak
    memory of keeping every parsed object). Other objects are kept as they are."""
    if "bbox" in record and "image_id" in record and "category_id" in record:
        return (record["image_id"], record["category_id"], record["bbox"], record.get("id"))
    return record


def _load_json(path: Path):
    # Parsing creates millions of containers and no cycles: the cycle collector would scan
    # them over and over for nothing (about half the parse time), so it is paused meanwhile.
    enabled = gc.isenabled()
    gc.disable()
    try:
        with path.open("rb") as handle:
            return json.load(handle, object_hook=_compact_annotation)
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); fix or regenerate "
            "the file"
        ) from None
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: not UTF-8 JSON ({exc.reason})") from None
    except OSError as exc:
        raise AnnotationError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        if enabled:
            gc.enable()


def _check_annotations(path: Path, annotations: list) -> None:
    """Every annotation was compacted by the object hook, else it lacks a key."""
    if all(type(a) is tuple for a in annotations):
        return
    for i, record in enumerate(annotations):
        if type(record) is tuple:
            continue
        if not isinstance(record, dict):
            raise AnnotationError(f"{path}: annotations[{i}] is not an object")
        missing = next(k for k in _ANNOTATION_KEYS if k not in record)
        raise AnnotationError(
            f"{path}: annotations[{i}] (id {record.get('id')}) has no '{missing}'"
        )


def _column(path: Path, records: list, section: str, key: str, *, hashable: bool = False) -> list:
    """`record[key]` of every record; a record without it names itself in the error."""
    try:
        values = [record[key] for record in records]
        if hashable:
            {*values}  # noqa: B018  (raises TypeError for a list or an object)
        return values
    except (KeyError, TypeError, IndexError):
        pass
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise AnnotationError(f"{path}: {section}[{i}] is not an object")
        if key not in record:
            raise AnnotationError(f"{path}: {section}[{i}] has no '{key}'")
        if hashable and isinstance(record[key], (list, dict)):
            raise AnnotationError(f"{path}: {section}[{i}] '{key}' is not a number or a string")
    raise AssertionError("unreachable")  # pragma: no cover


def _sizes(path: Path, images: list, key: str) -> np.ndarray:
    """Image widths or heights; missing or null sizes are NaN (their boxes get skipped)."""
    values = [record.get(key) for record in images]
    try:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        for i, value in enumerate(values):
            try:
                float(value)
            except (TypeError, ValueError):
                raise AnnotationError(
                    f"{path}: images[{i}] '{key}' is {value!r}, not a number"
                ) from None
        raise


def _bboxes(path: Path, annotations: list) -> np.ndarray:
    """[n, 4] float64 of every annotation's [x, y, w, h]."""
    try:
        boxes = np.array([a[2] for a in annotations], dtype=np.float64)
        if boxes.shape == (len(annotations), 4) or not annotations:
            return boxes.reshape(len(annotations), 4)
    except (TypeError, ValueError):
        pass
    for i, record in enumerate(annotations):
        box = record[2]
        try:
            ok = not isinstance(box, (str, dict)) and len(box) == 4
            if ok:
                [float(v) for v in box]
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise AnnotationError(
                f"{path}: annotations[{i}] (id {record[3]}) bbox {str(box)[:60]} is not "
                "four numbers [x, y, width, height]"
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _unique_names(names: list[str], keys: list) -> list[str]:
    """Category names, with the id appended where two categories share a name."""
    counts = Counter(names)
    return [n if counts[n] == 1 else f"{n} ({k})" for n, k in zip(names, keys, strict=True)]
