"""The model's input frame: where each box lands after the model's resize and centre crop.

The bias a network sees is the one after its preprocessing. The geometry is the one jaggy's
own standard source uses (`jaggy.data.prepare_source`, kind 'standard'): the shorter image
side is resized to floor(R / crop_pct) (the longer one to round(long * scale / short), at
least that), then the centre R x R window is kept, its left edge at (new_width - R) // 2 and
its top at (new_height - R) // 2. Coordinates follow `jaggy.data.annotations`' convention
(continuous pixels, origin top-left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import Preprocessing


@dataclass
class InputFrame:
    """Boxes in the R x R input window, clipped to it. `cut`: part of the box lies outside
    the window; `outside`: none of it is inside (left out of the input-frame statistics)."""

    size: int
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    cut: np.ndarray
    outside: np.ndarray


def resize_and_crop(
    width: np.ndarray, height: np.ndarray, preprocessing: Preprocessing
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per image: (resized width, resized height, crop left, crop top), in pixels."""
    side = preprocessing.input_size
    scale_size = int(side / preprocessing.crop_pct)
    width = np.asarray(width, dtype=np.float64)
    height = np.asarray(height, dtype=np.float64)
    portrait = width <= height
    # np.round rounds half to even, as Python's round() in prepare_source does.
    long_w = np.maximum(scale_size, np.round(width * scale_size / height))
    long_h = np.maximum(scale_size, np.round(height * scale_size / width))
    new_w = np.where(portrait, scale_size, long_w)
    new_h = np.where(portrait, long_h, scale_size)
    left = np.floor((new_w - side) / 2)
    top = np.floor((new_h - side) / 2)
    return new_w, new_h, left, top


def to_input_frame(
    x0: np.ndarray,
    y0: np.ndarray,
    x1: np.ndarray,
    y1: np.ndarray,
    width: np.ndarray,
    height: np.ndarray,
    preprocessing: Preprocessing,
) -> InputFrame:
    """Map boxes (image pixels; `width`/`height` per box: its image's size) into the input
    window of `preprocessing`."""
    side = float(preprocessing.input_size)
    new_w, new_h, left, top = resize_and_crop(width, height, preprocessing)
    sx, sy = new_w / width, new_h / height
    mx0, mx1 = x0 * sx - left, x1 * sx - left
    my0, my1 = y0 * sy - top, y1 * sy - top
    cx0, cy0 = np.clip(mx0, 0.0, side), np.clip(my0, 0.0, side)
    cx1, cy1 = np.clip(mx1, 0.0, side), np.clip(my1, 0.0, side)
    eps = 1e-9
    cut = (mx0 < -eps) | (my0 < -eps) | (mx1 > side + eps) | (my1 > side + eps)
    outside = (cx1 - cx0 <= 0) | (cy1 - cy0 <= 0)
    return InputFrame(int(side), cx0, cy0, cx1, cy1, cut & ~outside, outside)
