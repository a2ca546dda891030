"""Decoding one image robustly into an RGB picture, and preparing protocol sources from it."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageOps

from ..models._interpolation import pil_filter
from ..protocols import SourceRequest
from ._box_source import object_square_image

if TYPE_CHECKING:
    from .annotations._objects import ObjectBox

MIN_SIDE = 16  # px; smaller images carry no usable signal at 224 px
MAX_PIXELS = 200_000_000  # refuse decompression bombs instead of exhausting memory


class ImageDecodeError(Exception):
    """An image that cannot be used; the message is the reason recorded in the manifest."""


# PIL's bomb check is process-wide state (`Image.MAX_IMAGE_PIXELS`), and the warning it gives
# above 89 MP could only be turned into an error through `warnings` filters, which are
# process-wide too: changed on a decoding thread while another thread enters or leaves its
# own `catch_warnings` (a graph build, torch itself), either side can lose its filters. So
# no decoding thread touches `warnings`. PIL's cap is set under this lock (restored after):
# off while a file is opened, where jaggy's own check of the header's size (MAX_PIXELS)
# refuses a huge image before its pixels are decoded; and at half of MAX_PIXELS while it is
# loaded, so that a frame that grows beyond MAX_PIXELS while decoding (GIF) raises PIL's
# error instead of exhausting memory.
_PIL_CAP_LOCK = threading.Lock()


@contextlib.contextmanager
def _pil_cap(pixels: int | None):
    """PIL's `MAX_IMAGE_PIXELS` set to `pixels` for the block (None: PIL's check off)."""
    with _PIL_CAP_LOCK:
        before = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = before


def decode_image(path: str, target_side: int | None = None) -> tuple[Image.Image, str | None]:
    """Open `path` as an 8-bit RGB PIL image.

    Returns the image and a note describing any conversion (None when it was RGB already).
    Grayscale, RGBA and LA (composited on black), CMYK, palette and 16-bit images are
    converted; unreadable, truncated, tiny and huge images raise ImageDecodeError. A JPEG is
    decoded at the smallest 1/2^k scale whose sides are at least 2 x `target_side` (None: full
    resolution).
    """
    return _finish(_open(path, 2 * target_side if target_side else None))


def decode_sources(
    path: str,
    requests: list[SourceRequest],
    interpolation: str,
    crop_pct: float,
    box: ObjectBox | None = None,
) -> tuple[dict[str, torch.Tensor], str | None]:
    """Every source of `requests` from one image file: {request.key: uint8 [3, side, side]},
    and the conversion note (see `decode_image`). `box`: the item's annotated object (for
    'box' requests).

    Each source is prepared from the image decoded as its own request asks (`draft_side`),
    so a source, and every view made from it, depends only on the image and its request,
    never on which other protocols share the run. Within that rule nothing is done twice:
    the file is decoded once per distinct JPEG scale (a PNG, or a JPEG too small to be
    drafted, once in all), and a source is resized once per distinct (kind, side, margin,
    decoded scale), so requests that differ only in `full_decode` share it where the scales
    coincide. (A JPEG decoded at a reduced scale has other pixels than one decoded in full
    and resized, so different scales are never shared.)
    """
    sizes: dict[int | None, tuple[int, int]] = {}  # draft side -> decoded size
    decoded: dict[tuple[int, int], tuple[Image.Image, str | None]] = {}
    prepared: dict[tuple, torch.Tensor] = {}
    sources: dict[str, torch.Tensor] = {}
    note = None
    for request in requests:
        if request.key in sources:
            continue
        draft = request.draft_side
        if draft not in sizes:
            opened = _open(path, draft)
            sizes[draft] = opened.size
            if opened.size in decoded:
                opened.close()
            else:
                decoded[opened.size] = _finish(opened)
        size = sizes[draft]
        image, note = decoded[size]
        recipe = (request.kind, request.side, request.margin, size)
        if recipe not in prepared:
            prepared[recipe] = prepare_source(image, request, interpolation, crop_pct, box)
        sources[request.key] = prepared[recipe]
    return sources, note


def _open(path: str, draft_side: int | None) -> Image.Image:
    """The opened, not yet decoded image; a JPEG set to decode at the smallest scale whose
    sides are at least `draft_side` (None: full resolution)."""
    try:
        with _pil_cap(None):
            image = Image.open(path)
            if image.width * image.height > MAX_PIXELS:
                raise ImageDecodeError(
                    f"huge image ({image.width}x{image.height} px > {MAX_PIXELS} px)"
                )
            if draft_side and image.format == "JPEG":
                image.draft("RGB", (draft_side, draft_side))
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"huge image: {exc}") from exc
    except FileNotFoundError as exc:
        raise ImageDecodeError("file not found") from exc
    except Exception as exc:  # PIL raises many types for corrupt and truncated files
        raise ImageDecodeError(f"unreadable image ({type(exc).__name__}: {exc})") from exc
    return image


def _finish(image: Image.Image) -> tuple[Image.Image, str | None]:
    """Decode an opened image; check its size, apply its EXIF orientation, convert to RGB."""
    try:
        with _pil_cap(MAX_PIXELS // 2):  # PIL's error above twice its cap
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"huge image: {exc}") from exc
    except Exception as exc:  # PIL raises many types for corrupt and truncated files
        raise ImageDecodeError(f"unreadable image ({type(exc).__name__}: {exc})") from exc
    if min(image.size) < MIN_SIDE:
        raise ImageDecodeError(
            f"too small ({image.width}x{image.height} px; at least {MIN_SIDE} px a side needed)"
        )
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "RGB":
        return image, None
    return _to_rgb(image), f"converted from {mode}"


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        lo, hi = float(array.min()), float(array.max())
        gray = ((array - lo) / (hi - lo or 1.0) * 255.0 + 0.5).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels become black, like an embed protocol's canvas.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _center_square(image: Image.Image) -> Image.Image:
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side))


def _short_side_source(image: Image.Image, side: int) -> torch.Tensor:
    """The whole image with its shorter side resized to `side`, as ImageNet-P's generator
    does it (torchvision's Resize(256): bilinear, longer side int(side * long / short))."""
    w, h = image.size
    new = (side, int(side * h / w)) if w <= h else (int(side * w / h), side)
    return to_chw(image.resize(new, Image.Resampling.BILINEAR))


def to_chw(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a uint8 tensor [3, H, W]. The transpose is numpy's, on the calling
    thread: torch's copy of a permuted uint8 tensor is split across the intra-op threads,
    which wait for a busy core while the model holds them (measured: 0.07 ms here against
    0.15 ms quiet and up to 5 ms with the model running)."""
    return torch.from_numpy(
        np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
    )


def prepare_source(
    image: Image.Image,
    request: SourceRequest,
    interpolation: str,
    crop_pct: float,
    box: ObjectBox | None = None,
) -> torch.Tensor:
    """One protocol source as a uint8 tensor [3, side, side] (see SourceRequest); `box` is
    the item's annotated object, which the 'box' kind crops."""
    resample = pil_filter(interpolation)
    side = request.side
    if request.kind == "box":
        square = object_square_image(image, box, side, request.margin, resample)
    elif request.kind == "square":
        square = _center_square(image).resize((side, side), resample)
    elif request.kind == "standard":
        square = _resize_center_crop(image, int(side / crop_pct), side, resample)
    elif request.kind == "short_side":
        square = _resize_center_crop(image, side, side, resample)
    elif request.kind == "study":
        square = _study_crop(image).resize((side, side), Image.Resampling.BILINEAR)
    elif request.kind == "short":
        return _short_side_source(image, side)
    else:
        raise ValueError(f"unknown source kind {request.kind}")
    return to_chw(square)


def _resize_center_crop(
    image: Image.Image, short: int, side: int, resample: Image.Resampling
) -> Image.Image:
    """torchvision's `Resize(short)` then `CenterCrop(side)` on a PIL image: the longer side
    becomes floor(short * long / shorter), the crop starts at round((size - side) / 2)."""
    w, h = image.size
    if w <= h:
        new = (short, int(short * h / w))
    else:
        new = (int(short * w / h), short)
    resized = image.resize(new, resample)
    left, top = int(round((new[0] - side) / 2.0)), int(round((new[1] - side) / 2.0))
    return resized.crop((left, top, left + side, top + side))


def _study_crop(image: Image.Image) -> Image.Image:
    """The region torchvision's `RandomResizedCrop(size, scale=(1, 1))` falls back to: the
    whole image when its aspect ratio w / h is within [3/4, 4/3], else a centre crop of the
    full shorter side at the nearest of those ratios (torchvision's `get_params` fallback)."""
    w, h = image.size
    ratio = w / h
    if ratio < 3 / 4:
        cw, ch = w, int(round(w / (3 / 4)))
    elif ratio > 4 / 3:
        cw, ch = int(round(h * (4 / 3))), h
    else:
        cw, ch = w, h
    top, left = (h - ch) // 2, (w - cw) // 2
    return image.crop((left, top, left + cw, top + ch))
