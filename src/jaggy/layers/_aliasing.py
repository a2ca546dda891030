"""Aliasing energy: how much of a signal a subsampling layer is about to fold back.

Sampling a map on a grid s times coarser keeps frequencies up to the grid's Nyquist frequency
1 / (2 s) cycles per input cell; power above it aliases (Shannon 1949). The fraction of power
above that frequency, per channel, measures how badly a stride-s layer breaks the sampling
theorem (Azulay & Weiss, JMLR 2019; Zhang, ICML 2019).

Conventions: the per-channel mean (DC) is removed first, so the fraction is of the varying part
of the map; the map is treated as one period (no window), so its borders count as content;
a frequency exactly at 1 / (2 s) is not counted as above it. Channels with no varying power
are left out of the channel mean.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def aliasing_energy(x: torch.Tensor, stride: int | tuple[int, int]) -> float:
    """Fraction of the (mean-removed) spectral power of `x` above the Nyquist frequency of a
    grid `stride` times coarser, averaged over channels (and over the batch).

    Args:
        x: map [C, H, W] or [N, C, H, W].
        stride: (sy, sx) or s, the subsampling factor of the grid the map is sampled onto.

    Returns:
        A number in [0, 1]; NaN when no channel varies.

    Example:
        >>> n = torch.arange(16.0)
        >>> stripes = torch.cos(torch.pi * n / 2).expand(1, 16, 16)  # 1/4 cycle per pixel
        >>> round(aliasing_energy(stripes, 2), 6), round(aliasing_energy(stripes, 4), 6)
        (0.0, 1.0)
    """
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    if x.ndim == 3:
        x = x.unsqueeze(0)
    x = x.float()
    height, width = x.shape[-2:]
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2)
    fy = torch.fft.fftfreq(height, device=x.device, dtype=torch.float64).abs()
    fx = torch.fft.fftfreq(width, device=x.device, dtype=torch.float64).abs()
    # Half a bin of tolerance: a frequency on the boundary is not "above" it.
    above_y = fy > 0.5 / sy + 0.25 / height
    above_x = fx > 0.5 / sx + 0.25 / width
    above = (above_y[:, None] | above_x[None, :]).to(power.dtype)
    total = power.sum(dim=(-2, -1))
    high = (power * above).sum(dim=(-2, -1))
    # A channel varies when its RMS exceeds 1e-6 of the largest value: float rounding leaves
    # tiny power in constant channels.
    scale = float(x.abs().amax()) if x.numel() else 0.0
    varying = x.pow(2).mean(dim=(-2, -1)) > (1e-6 * scale) ** 2
    if not bool(varying.any()):
        return math.nan
    return float((high[varying] / total[varying]).mean())


def dense_output(module: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The subsampling `module` applied to `x` with its stride set to 1: the signal that its
    strided version samples. None when the module has no settable integer `stride`.

    Calls `module.forward` directly (no hooks run) and restores the stride afterwards.
    """
    stride = getattr(module, "stride", None)
    if stride is None or list(module.children()):
        return None
    if isinstance(stride, (tuple, list)):
        if not all(isinstance(s, int) for s in stride):
            return None
        dense = type(stride)(1 for _ in stride)
    elif isinstance(stride, int):
        dense = 1
    else:
        return None
    try:
        module.stride = dense
        with torch.no_grad():
            out = module.forward(x)
    except Exception:  # a module whose forward cannot run at stride 1: no dense measurement
        return None
    finally:
        module.stride = stride
    return out if isinstance(out, torch.Tensor) and out.ndim == x.ndim else None
