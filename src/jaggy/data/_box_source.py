"""The `bbox` protocol's source: a square around one annotated object, resized.

Geometry (pixels of the image as annotated, origin top-left): the square's side is the box's
larger side times (1 + 2 * margin), at most the image's shorter side; it is centred on the
box's centre, then moved (not shrunk) to lie inside the image. No padding and no embedding:
the study's check that failures under 1-pixel shifts are not artefacts of resizing or of a
black canvas (Azulay & Weiss, JMLR 2019, section 3) uses the object's own surroundings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from .annotations._objects import ObjectBox

# A crop smaller than this (px of the original image) would be upscaled more than 7x for a
# 224 px model: such objects are skipped, with the reason, rather than measured as blur.
MIN_OBJECT_SIDE = 32
# The decoded image may differ from the annotated size by JPEG draft scaling (both axes
# alike); a different aspect means the annotation describes another picture.
ASPECT_TOLERANCE = 0.02


def object_square(box: ObjectBox, margin: float) -> tuple[float, float, float]:
    """(left, top, side) of the object's square, in pixels of the annotated image."""
    w, h = box.x1 - box.x0, box.y1 - box.y0
    side = min(max(w, h) * (1 + 2 * margin), box.image_width, box.image_height)
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    left = min(max(cx - side / 2, 0.0), box.image_width - side)
    top = min(max(cy - side / 2, 0.0), box.image_height - side)
    return left, top, side


def object_square_image(
    image: Image.Image, box: ObjectBox | None, side: int, margin: float, resample
) -> Image.Image:
    """The object's square of `image`, resized to side x side (sub-pixel exact: PIL resamples
    the float region directly). Raises ImageDecodeError for an object too small to crop or an
    image whose size does not match its annotation."""
    from ._decode import ImageDecodeError

    if box is None:
        raise ImageDecodeError("the bbox protocol needs annotated objects (--annotations FILE)")
    left, top, square = object_square(box, margin)
    if square < MIN_OBJECT_SIDE:
        raise ImageDecodeError(
            f"object too small to crop ({box.x1 - box.x0:.0f}x{box.y1 - box.y0:.0f} px: a "
            f"{square:.0f} px square with margin {margin:g}; at least {MIN_OBJECT_SIDE} px)"
        )
    fx, fy = image.width / box.image_width, image.height / box.image_height
    if abs(fx - fy) > ASPECT_TOLERANCE * max(fx, fy):
        raise ImageDecodeError(
            f"image is {image.width}x{image.height} px but annotated as "
            f"{box.image_width:.0f}x{box.image_height:.0f}"
        )
    region = (left * fx, top * fy, (left + square) * fx, (top + square) * fy)
    return image.resize((side, side), resample, box=region)
