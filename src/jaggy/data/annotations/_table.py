"""The one in-memory form of every annotation file: columns of boxes in image pixels.

Conventions: coordinates are continuous pixel coordinates of the image frame, origin at the
top-left corner of the top-left pixel, x right, y down; pixel i covers [i, i + 1). A box is
(x0, y0, x1, y1) with x0 < x1 and y0 < y1, so its width is x1 - x0 in pixels. Readers convert
each format's own convention (COCO's [x, y, w, h], VOC's 1-based inclusive corners, YOLO's
normalised centres) into this one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ...errors import DataError

# Why a box is skipped (bias.json `skipped` counts these).
NON_POSITIVE_SIZE = "non_positive_size"
OUTSIDE_IMAGE = "outside_image"
MISSING_IMAGE_SIZE = "missing_image_size"
UNKNOWN_IMAGE = "unknown_image"
UNKNOWN_CLASS = "unknown_class"
NON_FINITE = "non_finite_coordinates"
SKIP_REASONS = (
    NON_POSITIVE_SIZE,
    OUTSIDE_IMAGE,
    MISSING_IMAGE_SIZE,
    UNKNOWN_IMAGE,
    UNKNOWN_CLASS,
    NON_FINITE,
)

# Corners may overshoot the image by this much (annotation tools round); such boxes are
# clipped to the image. Boxes that overshoot by more are skipped as outside the image.
TOLERANCE_PX = 1.0


class AnnotationError(DataError):
    """An annotation file that cannot be read; the message names the file and the line or
    record."""


@dataclass
class Annotations:
    """Boxes of one annotation file, as columns (one entry per kept box).

    Attributes:
        path: the file or folder read; format: its format name.
        image_ids: per image, its id (file name relative to the image folder, or the name the
            file gives, possibly without extension).
        image_width, image_height: per image, in pixels (NaN when unknown).
        class_names: per class, its name (COCO category name, VOC name, synset, YOLO name).
        box_image, box_class: per box, its image and class (indices into the lists above).
        x0, y0, x1, y1: per box, its corners (see the module's conventions).
        skipped: boxes skipped, by reason; skipped_examples: the first one of each reason.
    """

    path: str
    format: str
    image_ids: list[str]
    image_width: np.ndarray
    image_height: np.ndarray
    class_names: list[str]
    box_image: np.ndarray
    box_class: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    skipped: Counter = field(default_factory=Counter)
    skipped_examples: dict[str, str] = field(default_factory=dict)

    @property
    def n_boxes(self) -> int:
        return len(self.x0)

    @property
    def n_images(self) -> int:
        """Images with at least one kept box."""
        return int(np.unique(self.box_image).size)

    def object_indices(self) -> np.ndarray:
        """Per box, how many kept boxes of the same image come before it in file order
        (0, 1, …): with the image id, the object's name in outputs (`image_id#k`)."""
        order = np.argsort(self.box_image, kind="stable")
        sorted_images = self.box_image[order]
        starts = np.flatnonzero(np.r_[True, sorted_images[1:] != sorted_images[:-1]])
        run_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        out = np.empty(len(order), dtype=np.int64)
        out[order] = np.arange(len(order)) - run_start
        return out


class BoxCollector:
    """Accumulates boxes record by record (the XML, CSV and YOLO readers), checking each
    against its image and class and counting the bad ones by reason."""

    def __init__(self) -> None:
        self.image_ids: list[str] = []
        self.widths: list[float] = []
        self.heights: list[float] = []
        self._image_index: dict[str, int] = {}
        self.class_names: list[str] = []
        self._class_index: dict[str, int] = {}
        self.columns: tuple[list, ...] = ([], [], [], [], [], [])
        self.skipped: Counter = Counter()
        self.examples: dict[str, str] = {}

    def image(self, image_id: str, width: float | None, height: float | None) -> int:
        index = self._image_index.get(image_id)
        if index is None:
            index = len(self.image_ids)
            self._image_index[image_id] = index
            self.image_ids.append(image_id)
            self.widths.append(_size_or_nan(width))
            self.heights.append(_size_or_nan(height))
        return index

    def class_id(self, name: str) -> int:
        index = self._class_index.get(name)
        if index is None:
            index = len(self.class_names)
            self._class_index[name] = index
            self.class_names.append(name)
        return index

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, where)

    def add(
        self, image: int, cls: int, x0: float, y0: float, x1: float, y1: float, where: str
    ) -> None:
        """Add one box in image pixels, or count it as skipped (`where` names it)."""
        reason = box_problem(self.widths[image], self.heights[image], x0, y0, x1, y1)
        if reason is not None:
            self.skip(reason, where)
            return
        w, h = self.widths[image], self.heights[image]
        for column, value in zip(
            self.columns,
            (image, cls, min(max(x0, 0.0), w), min(max(y0, 0.0), h), min(x1, w), min(y1, h)),
            strict=True,
        ):
            column.append(value)

    def finish(self, path: str, format: str) -> Annotations:
        image, cls, x0, y0, x1, y1 = self.columns
        return Annotations(
            path=path,
            format=format,
            image_ids=self.image_ids,
            image_width=np.asarray(self.widths, dtype=np.float64),
            image_height=np.asarray(self.heights, dtype=np.float64),
            class_names=self.class_names,
            box_image=np.asarray(image, dtype=np.int64),
            box_class=np.asarray(cls, dtype=np.int64),
            x0=np.asarray(x0, dtype=np.float64),
            y0=np.asarray(y0, dtype=np.float64),
            x1=np.asarray(x1, dtype=np.float64),
            y1=np.asarray(y1, dtype=np.float64),
            skipped=self.skipped,
            skipped_examples=self.examples,
        )


def _size_or_nan(value: float | None) -> float:
    if value is None:
        return float("nan")
    value = float(value)
    return value if value > 0 and np.isfinite(value) else float("nan")


def box_problem(
    width: float, height: float, x0: float, y0: float, x1: float, y1: float
) -> str | None:
    """Why a box cannot be used (a skip reason), or None. Checked in this order: non-finite
    corners, non-positive size, unknown image size, outside the image (beyond TOLERANCE_PX)."""
    if not all(np.isfinite(v) for v in (x0, y0, x1, y1)):
        return NON_FINITE
    if x1 <= x0 or y1 <= y0:
        return NON_POSITIVE_SIZE
    if not (width > 0 and height > 0):  # NaN: unknown
        return MISSING_IMAGE_SIZE
    t = TOLERANCE_PX
    if x0 < -t or y0 < -t or x1 > width + t or y1 > height + t:
        return OUTSIDE_IMAGE
    if min(x1, width) <= max(x0, 0.0) or min(y1, height) <= max(y0, 0.0):
        return OUTSIDE_IMAGE  # only inside the tolerance band: nothing of it is in the image
    return None


def box_problems(
    width: np.ndarray,
    height: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    x1: np.ndarray,
    y1: np.ndarray,
) -> np.ndarray:
    """`box_problem` for columns: per box, the index into SKIP_REASONS of its problem, or -1."""
    code = np.full(len(x0), -1, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(x0) & np.isfinite(y0) & np.isfinite(x1) & np.isfinite(y1)
        t = TOLERANCE_PX
        outside = (x0 < -t) | (y0 < -t) | (x1 > width + t) | (y1 > height + t)
        outside |= np.minimum(x1, width) <= np.maximum(x0, 0.0)
        outside |= np.minimum(y1, height) <= np.maximum(y0, 0.0)
        checks = (
            (~finite, NON_FINITE),
            ((x1 <= x0) | (y1 <= y0), NON_POSITIVE_SIZE),
            (~((width > 0) & (height > 0)), MISSING_IMAGE_SIZE),
            (outside, OUTSIDE_IMAGE),
        )
    for mask, reason in checks:
        code[(code < 0) & mask] = SKIP_REASONS.index(reason)
    return code


def keep_boxes(
    path: str,
    format: str,
    image_ids: list[str],
    widths: np.ndarray,
    heights: np.ndarray,
    class_names: list[str],
    box_image: np.ndarray,
    box_class: np.ndarray,
    corners: np.ndarray,
    skipped: Counter,
    examples: dict[str, str],
    describe,
) -> Annotations:
    """Vectorised checks for readers that parse a whole file at once (COCO): boxes with a
    problem are counted and dropped, the others clipped to their image. `box_image` /
    `box_class` are -1 for an unknown image / class (already counted by the caller, or counted
    here). `describe(i)` names box i for the first example of each reason."""
    x0, y0, x1, y1 = corners
    unknown_image = box_image < 0
    unknown_class = (box_class < 0) & ~unknown_image
    safe_image = np.where(unknown_image, 0, box_image)
    w = widths[safe_image] if len(widths) else np.full(len(x0), np.nan)
    h = heights[safe_image] if len(heights) else np.full(len(x0), np.nan)
    code = box_problems(w, h, x0, y0, x1, y1)
    code[unknown_class] = SKIP_REASONS.index(UNKNOWN_CLASS)
    code[unknown_image] = SKIP_REASONS.index(UNKNOWN_IMAGE)
    for k, reason in enumerate(SKIP_REASONS):
        where = np.flatnonzero(code == k)
        if where.size:
            skipped[reason] += int(where.size)
            examples.setdefault(reason, describe(int(where[0])))
    keep = code < 0
    wk, hk = w[keep], h[keep]
    return Annotations(
        path=path,
        format=format,
        image_ids=image_ids,
        image_width=widths,
        image_height=heights,
        class_names=class_names,
        box_image=box_image[keep].astype(np.int64),
        box_class=box_class[keep].astype(np.int64),
        x0=np.clip(x0[keep], 0.0, wk),
        y0=np.clip(y0[keep], 0.0, hk),
        x1=np.minimum(x1[keep], wk),
        y1=np.minimum(y1[keep], hk),
        skipped=skipped,
        skipped_examples=examples,
    )
