"""Interpolation names, defined once: a model's preprocessing names a PIL filter, and each
library that resamples (PIL when decoding, torchvision when training, torch on the device)
gets its own spelling of that name from here.

PIL and torchvision are imported by the function that needs them: importing torchvision
takes seconds, and only training transforms use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image
    from torchvision.transforms import InterpolationMode

# The PIL filters a preprocessing may name (`Image.Resampling` members, lower case).
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos", "box", "hamming")
# Training transforms also run on tensors, where torchvision knows only these three.
_TORCHVISION = ("bilinear", "bicubic", "nearest")
# torch.nn.functional.interpolate knows only these; the PIL-only filters fall back to bilinear.
_TORCH = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest"}


def pil_filter(name: str) -> Image.Resampling:
    """PIL's filter for `name` (bilinear for a name PIL does not know)."""
    from PIL import Image

    return Image.Resampling[(name if name in INTERPOLATIONS else "bilinear").upper()]


def torchvision_mode(name: str) -> InterpolationMode:
    """torchvision's interpolation mode for `name` (bilinear for an unknown name)."""
    from torchvision.transforms import InterpolationMode

    return InterpolationMode[(name if name in _TORCHVISION else "bilinear").upper()]


def torch_mode(name: str) -> str:
    """The `mode` of `torch.nn.functional.interpolate` for `name` (bilinear where torch has
    no such filter)."""
    return _TORCH.get(name, "bilinear")
