"""The study's inpainting as jaggy first wrote it: every round over whole canvases, vectorised
over views. The slow, obvious reference for `jaggy.protocols.embed.inpaint`, which computes
each round only where it can change a pixel (`protocols/_inpaint.py`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TAPS = [math.comb(11, k) / 2048 for k in range(12)]


def blur12(x: torch.Tensor) -> torch.Tensor:
    """The study's separable 12-tap binomial blur of [N, C, H, W], zero outside: rows, then
    columns, each as scipy's `convolve2d(..., 'same')`, whose window for an even filter spans
    6 pixels before and 5 after."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (6, 5, 0, 0))
    rows = padded[..., 0:w] * TAPS[0]
    for k in range(1, 12):
        rows.add_(padded[..., k : k + w], alpha=TAPS[k])
    padded = F.pad(rows, (0, 0, 6, 5))
    out = padded[..., 0:h, :] * TAPS[0]
    for k in range(1, 12):
        out.add_(padded[..., k : k + h, :], alpha=TAPS[k])
    return out


def reference_inpaint(canvas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Rounds of blur(image * mask) / blur(mask) outside the mask over whole canvases [N, C, H,
    W], the mask then every pixel whose channels do not sum to zero, while more than 200
    pixels sum to zero, at most 80 rounds."""
    image, mask = canvas, mask.to(canvas.dtype)
    zero = image.sum(dim=1, keepdim=True) == 0
    active = zero.flatten(1).sum(dim=1) > 200
    for _ in range(80):
        if not bool(active.any()):
            break
        blurred = blur12(image * mask)
        weight = blur12(mask)
        filled = blurred / (weight + (weight == 0).to(weight.dtype))
        step = mask * image + (1 - mask) * filled
        image = torch.where(active.view(-1, 1, 1, 1), step, image)
        zero = image.sum(dim=1, keepdim=True) == 0
        mask = (~zero).to(image.dtype)
        active = active & (zero.flatten(1).sum(dim=1) > 200)
    return image


def reference_make_views(protocol, source: torch.Tensor, indices: range) -> torch.Tensor:
    """`InpaintProtocol.make_views` on `reference_inpaint`: 8-bit pixel values pasted on
    black, inpainted in float64, normalised again."""
    prep = protocol.preprocessing
    pixels = (prep.to_pixels(source) * 255).round().clamp(0, 255)
    canvas, mask = protocol.paste(pixels, indices)
    filled = reference_inpaint(canvas.to(torch.float64), mask.to(torch.float64))
    return prep.normalize(filled.to(source.dtype) / 255.0)
