"""Explicit 2-D padding and the sampling geometry of strided layers.

Conventions: sizes, kernels, strides and pads are in pixels of the layer's input; a pad tuple
is (left, right, top, bottom), the order of `torch.nn.functional.pad`; a negative pad crops.
Padding modes are named as jaggy's CLI names them: `reflect` (mirror without repeating the edge
pixel), `replicate` (repeat the edge pixel), `zero` (a constant, zero unless a layer says
otherwise, e.g. -inf for max pooling) and `circular` (wrap around: what leaves one border
re-enters at the opposite one, which makes stride-1 layers exactly equivariant to
`torch.roll`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ArgumentError

PAD_MODES = ("reflect", "replicate", "zero", "circular")

_MODE_ALIASES = {
    "reflect": "reflect",
    "reflection": "reflect",
    "replicate": "replicate",
    "replication": "replicate",
    "edge": "replicate",
    "zero": "zero",
    "zeros": "zero",
    "constant": "zero",
    "circular": "circular",
    "wrap": "circular",
}

# torch.nn.Conv2d spells the modes differently.
TORCH_CONV_MODES = {
    "reflect": "reflect",
    "replicate": "replicate",
    "zero": "zeros",
    "circular": "circular",
}


def normalize_pad_mode(mode: str) -> str:
    """One of PAD_MODES from a mode name or a common alias ('zeros', 'constant', 'wrap')."""
    key = str(mode).strip().lower()
    if key not in _MODE_ALIASES:
        raise ArgumentError(f"unknown padding '{mode}'; choose one of: {', '.join(PAD_MODES)}")
    return _MODE_ALIASES[key]


def pad2d(
    x: torch.Tensor, pads: tuple[int, int, int, int], mode: str, value: float = 0.0
) -> torch.Tensor:
    """Pad (or, for negative entries, crop) the last two dims of `x`.

    Unlike `torch.nn.functional.pad`, `reflect` and `circular` also work when a pad is as
    large as the map itself (tiny late feature maps): the signal is extended periodically
    (period H for circular, 2(H-1) for reflect; a 1-pixel map is replicated).

    Args:
        x: [..., H, W] tensor.
        pads: (left, right, top, bottom) in pixels.
        mode: one of PAD_MODES.
        value: the constant for mode `zero`.
    """
    left, right, top, bottom = (int(p) for p in pads)
    if min(left, right, top, bottom) < 0:
        height, width = x.shape[-2:]
        x = x[..., max(-top, 0) : height - max(-bottom, 0), max(-left, 0) : width - max(-right, 0)]
        left, right, top, bottom = (max(p, 0) for p in (left, right, top, bottom))
    if not (left or right or top or bottom):
        return x
    if mode == "zero":
        return F.pad(x, (left, right, top, bottom), mode="constant", value=value)
    height, width = x.shape[-2:]
    if mode == "replicate" or _fits_torch_pad(mode, height, width, (left, right, top, bottom)):
        return F.pad(x, (left, right, top, bottom), mode=mode)
    rows = _extension_indices(height, top, bottom, mode, x.device)
    cols = _extension_indices(width, left, right, mode, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _fits_torch_pad(mode: str, height: int, width: int, pads: tuple[int, int, int, int]) -> bool:
    left, right, top, bottom = pads
    if mode == "reflect":
        return max(left, right) < width and max(top, bottom) < height
    return max(left, right) <= width and max(top, bottom) <= height  # circular


def _extension_indices(
    size: int, before: int, after: int, mode: str, device: torch.device
) -> torch.Tensor:
    """Source index of every pixel of the extended signal [-before, size + after)."""
    positions = torch.arange(-before, size + after, device=device)
    if mode == "circular":
        return positions.remainder(size)
    if size == 1:
        return torch.zeros_like(positions)
    period = 2 * (size - 1)
    folded = positions.remainder(period)
    return torch.where(folded >= size, period - folded, folded)


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for one dim: output ceil(size / stride); the
    odd pixel, if any, goes after (bottom/right)."""
    total = max((math.ceil(size / stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def output_length(
    size: int, span: int, stride: int, before: int, after: int, ceil_mode: bool = False
) -> int:
    """Number of outputs of a strided window of `span` pixels (dilation * (k - 1) + 1) over a
    signal padded by (before, after), with PyTorch's floor / ceil conventions."""
    room = size + before + after - span
    if ceil_mode:
        count = -(-room // stride) + 1
        # PyTorch: the last window must start inside the input or the leading padding.
        if (count - 1) * stride >= size + before:
            count -= 1
        return count
    return room // stride + 1


def dense_length(size: int, stride: int, count: int) -> int:
    """Length of the stride-1 (dense) map whose subsampling by `stride` gives `count` outputs.

    The dense map keeps the input's size where it can, so that BlurPool's ceil(L / stride)
    and the polyphase split both return exactly `count` samples; positions 0, stride, ...
    are the strided layer's own samples.
    """
    return min(max(size, stride * (count - 1) + 1), stride * count)
