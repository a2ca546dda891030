"""BlurPool: a binomial low-pass filter followed by subsampling (Zhang, ICML 2019, "Making
convolutional networks shift-invariant again")."""

from __future__ import annotations

from math import comb

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ArgumentError
from ._padding import normalize_pad_mode, pad2d

FILTER_SIZES = tuple(range(1, 8))


def binomial_filter(filt_size: int) -> torch.Tensor:
    """The normalised binomial filter of `filt_size` taps, C(n-1, k) / 2^(n-1), as float64.

    Size 1 is the identity, 2 the box [1, 1] / 2, 3 is [1, 2, 1] / 4, and so on; the taps sum
    to 1, so a constant signal passes unchanged (unit DC gain).
    """
    filt_size = check_filter_size(filt_size)
    taps = torch.tensor([comb(filt_size - 1, k) for k in range(filt_size)], dtype=torch.float64)
    return taps / taps.sum()


def check_filter_size(filt_size: int) -> int:
    if isinstance(filt_size, bool) or int(filt_size) != filt_size or filt_size not in FILTER_SIZES:
        raise ArgumentError(
            f"blur filter size must be an integer from 1 to 7, got {filt_size!r} "
            "(1 = no blur, 3 = [1, 2, 1], 4 = [1, 3, 3, 1], the usual choice)"
        )
    return int(filt_size)


class BlurPool2d(nn.Module):
    """Blur every channel with a `filt_size` x `filt_size` binomial filter, then keep every
    `stride`-th pixel (Zhang, ICML 2019).

    Conventions: the input is padded by (filt_size - 1) // 2 pixels before and the rest of
    filt_size - 1 after, on both axes, in `pad_mode`; the output therefore has ceil(H / s) x
    ceil(W / s) pixels and output pixel i sees input pixels s*i - (filt_size - 1) // 2 ... on.
    For odd filter sizes and stride 2 this is exactly timm's `timm.layers.BlurPool2d` with the
    same `pad_mode` (tested); for even sizes the padding is asymmetric as in Zhang's reference
    implementation, so the output size stays ceil(H / s). `stride=1` gives a plain blur.

    The filter is a non-persistent buffer: converted models keep the state-dict keys of the
    original model. Filter size 1 is plain subsampling (`x[..., ::s, ::s]`).

    Args:
        filt_size: taps of the binomial filter, 1 to 7.
        stride: subsampling factor (int or (sy, sx)).
        pad_mode: reflect | replicate | zero | circular.
    """

    def __init__(
        self, filt_size: int = 4, stride: int | tuple[int, int] = 2, pad_mode: str = "reflect"
    ):
        super().__init__()
        self.filt_size = check_filter_size(filt_size)
        self.stride = _pair_stride(stride)
        self.pad_mode = normalize_pad_mode(pad_mode)
        taps = binomial_filter(self.filt_size).float()
        self.register_buffer("filt", torch.outer(taps, taps)[None, None], persistent=False)

    @property
    def pads(self) -> tuple[int, int, int, int]:
        before = (self.filt_size - 1) // 2
        after = self.filt_size - 1 - before
        return before, after, before, after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sy, sx = self.stride
        if self.filt_size == 1:
            return x[..., ::sy, ::sx]
        x = pad2d(x, self.pads, self.pad_mode)
        channels = x.shape[1]
        weight = self.filt.to(dtype=x.dtype, device=x.device)
        weight = weight.expand(channels, 1, self.filt_size, self.filt_size)
        return F.conv2d(x, weight, stride=self.stride, groups=channels)

    def extra_repr(self) -> str:
        stride = self.stride[0] if self.stride[0] == self.stride[1] else self.stride
        return f"filt_size={self.filt_size}, stride={stride}, pad_mode={self.pad_mode}"


def _pair_stride(stride: int | tuple[int, int]) -> tuple[int, int]:
    pair = (stride, stride) if isinstance(stride, int) else tuple(stride)
    if len(pair) != 2 or any(int(s) != s or s < 1 for s in pair):
        raise ArgumentError(f"stride must be a positive integer or a pair of them, got {stride!r}")
    return int(pair[0]), int(pair[1])
