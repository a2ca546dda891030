"""Interpolation names, defined once: a model's preprocessing names a PIL filter, and each
library that resamples (PIL when decoding, torchvision when training, torch on the device)
gets its own spelling of that name from here."""

from __future__ import annotations

from PIL import Image
from torchvision.transforms import InterpolationMode

_PIL = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
# Training transforms also run on tensors, where torchvision knows only these three.
_TORCHVISION = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}
# torch.nn.functional.interpolate knows only these; the PIL-only filters fall back to bilinear.
_TORCH = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest"}

INTERPOLATIONS = tuple(_PIL)


def pil_filter(name: str) -> Image.Resampling:
    """PIL's filter for `name` (bilinear for a name PIL does not know)."""
    return _PIL.get(name, Image.Resampling.BILINEAR)


def torchvision_mode(name: str) -> InterpolationMode:
    """torchvision's interpolation mode for `name` (bilinear for an unknown name)."""
    return _TORCHVISION.get(name, InterpolationMode.BILINEAR)


def torch_mode(name: str) -> str:
    """The `mode` of `torch.nn.functional.interpolate` for `name` (bilinear where torch has
    no such filter)."""
    return _TORCH.get(name, "bilinear")
