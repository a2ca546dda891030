"""ImageNet's localisation solution CSV (`LOC_val_solution.csv`, `LOC_train_solution.csv`):

    ImageId,PredictionString
    ILSVRC2012_val_00008726,n02119789 255 142 454 329 n02119789 44 21 322 295

Each PredictionString holds groups of five tokens: synset, xmin, ymin, xmax, ymax, with the
values and the convention of the localisation XML it was made from (1-based, ends included:
x0 = xmin - 1, x1 = xmax). The file carries no image sizes: they are read from the image
headers of the folder the images are in, only for the images the file names.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ._images import ImageFolderIndex
from ._synsets import check_synset
from ._table import (
    MISSING_IMAGE_SIZE,
    UNKNOWN_CLASS,
    UNKNOWN_IMAGE,
    AnnotationError,
    Annotations,
    BoxCollector,
)


def read_imagenet_csv(path: str | Path, images: str | Path | None) -> Annotations:
    """Read the CSV; `images` is the folder holding its images (for their sizes)."""
    path = Path(path)
    if images is None:
        raise AnnotationError(
            f"{path}: an ImageNet solution CSV has no image sizes; pass the folder of its "
            "images (--images DIR) so that they can be read from the image headers"
        )
    if not Path(images).is_dir():
        raise AnnotationError(f"--images '{images}' is not a folder")
    index = ImageFolderIndex(images)
    collector = BoxCollector()
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise AnnotationError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            for line, row in enumerate(csv.reader(handle), 1):
                _read_row(path, line, row, index, collector)
        except UnicodeDecodeError as exc:
            raise AnnotationError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
        except csv.Error as exc:
            raise AnnotationError(f"{path}:{line + 1}: not valid CSV ({exc})") from None
    return collector.finish(str(path), "imagenet-csv")


def _read_row(path: Path, line: int, row: list[str], index, collector: BoxCollector) -> None:
    if not row or not "".join(row).strip():
        return
    if line == 1 and row[0].strip().lower() == "imageid":
        return  # the header
    if len(row) != 2:
        raise AnnotationError(
            f"{path}:{line}: expected two fields 'ImageId,PredictionString', got {len(row)}"
        )
    image_id, tokens = row[0].strip(), row[1].split()
    if len(tokens) % 5:
        raise AnnotationError(
            f"{path}:{line}: PredictionString has {len(tokens)} tokens, expected groups of five "
            "(synset xmin ymin xmax ymax)"
        )
    groups = [tokens[k : k + 5] for k in range(0, len(tokens), 5)]
    corners = []
    for k, group in enumerate(groups):
        try:
            corners.append([float(v) for v in group[1:]])
        except ValueError:
            raise AnnotationError(
                f"{path}:{line}: box {k} ({' '.join(group)}) has a corner that is not a number"
            ) from None
    file = index.find(image_id)
    where = f"{path.name}:{line}"
    if file is None:
        for _ in groups:
            collector.skip(UNKNOWN_IMAGE, f"{where} ({image_id} is not in {index.folder})")
        return
    size = index.size(file)
    width, height = size if size else (None, None)
    image = collector.image(index.relative_id(file), width, height)
    for k, (group, (xmin, ymin, xmax, ymax)) in enumerate(zip(groups, corners, strict=True)):
        box_where = f"{where} box {k}"
        if size is None:
            collector.skip(MISSING_IMAGE_SIZE, f"{box_where} (cannot read the size of {file})")
        elif not check_synset(group[0]):
            collector.skip(UNKNOWN_CLASS, box_where)
        else:
            cls = collector.class_id(group[0])
            collector.add(image, cls, xmin - 1, ymin - 1, xmax, ymax, box_where)
