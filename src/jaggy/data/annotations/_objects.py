"""Annotated objects as audit items: one item per kept box, for the `bbox` protocol."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from .._items import ImageItem
from ._images import ImageFolderIndex
from ._synsets import imagenet_label


@dataclass(frozen=True)
class ObjectBox:
    """One annotated object: its corners (x0, y0, x1, y1) in pixels of the image as annotated
    (origin top-left, see `jaggy.data.annotations`), that image's width and height, and the
    object's class name."""

    x0: float
    y0: float
    x1: float
    y1: float
    image_width: float
    image_height: float
    class_name: str


def object_id(image_id: str, object_index: int) -> str:
    """How audit outputs name an object: `image_id#k`, the k-th kept box of its image in file
    order (boxes.parquet's `object_index`)."""
    return f"{image_id}#{object_index}"


def split_object_id(text: str) -> tuple[str, int] | None:
    """(image_id, k) of an object id, None for a plain image id."""
    image_id, sep, k = text.rpartition("#")
    return (image_id, int(k)) if sep and k.isdigit() else None


def object_items(
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    *,
    format: str | None = None,
    limit: int | None = None,
) -> list[ImageItem]:
    """One ImageItem per kept box of `annotations`, in file order, whose image is in the
    folder `images`. Objects of images that are not there still become items (their path
    does not exist), so that the run records each one as skipped with its reason.

    The label is the ImageNet class of a synset name (`n01440764`), -1 for other names.
    """
    from . import read_annotations

    folder = Path(images)
    if not folder.is_dir():
        raise DataError(
            f"--annotations needs DATA, the folder of the annotated images ('{images}')"
        )
    read = read_annotations(annotations, format=format, images=folder)
    if read.n_boxes == 0:
        raise DataError(f"{annotations}: no usable box (skipped: {dict(read.skipped)})")
    index = ImageFolderIndex(folder)
    k_of = read.object_indices()  # the numbering of boxes.parquet
    labels = [imagenet_label(name) for name in read.class_names]
    items: list[ImageItem] = []
    for b in range(read.n_boxes):
        if limit is not None and len(items) >= limit:
            break
        i = int(read.box_image[b])
        image_id = read.image_ids[i]
        file = index.find(image_id)
        path = str(file) if file is not None else str(folder / image_id)
        box = ObjectBox(
            float(read.x0[b]),
            float(read.y0[b]),
            float(read.x1[b]),
            float(read.y1[b]),
            float(read.image_width[i]),
            float(read.image_height[i]),
            read.class_names[int(read.box_class[b])],
        )
        items.append(
            ImageItem(
                len(items),
                object_id(image_id, int(k_of[b])),
                path,
                labels[int(read.box_class[b])],
                box=box,
            )
        )
    return items


__all__ = ["ObjectBox", "object_id", "object_items", "split_object_id"]
