"""The model's input frame: where each box lands after the model's resize and centre crop.

The bias a network sees is the one after its preprocessing. The geometry is the one jaggy's
own standard source uses (`jaggy.data.prepare_source`, kind 'standard', which follows
torchvision's `Resize` + `CenterCrop`): the shorter image side is resized to
S = floor(R / crop_pct), the longer one to floor(S * long / short), then the centre R x R
window is kept, its left edge at round((new_width - R) / 2) and its top at
round((new_height - R) / 2) (halves to even, as Python's round). Coordinates follow `jaggy.data.annotations`' convention
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
    new_w = np.where(portrait, scale_size, np.floor(scale_size * width / height))
    new_h = np.where(portrait, np.floor(scale_size * height / width), scale_size)
    # np.round rounds half to even, as Python's round() in prepare_source does.
    left = np.round((new_w - side) / 2.0)
    top = np.round((new_h - side) / 2.0)
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
