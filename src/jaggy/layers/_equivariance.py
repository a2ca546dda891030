"""Equivariance and shiftability of one feature map: compare the map of a shifted input with
the reference map shifted by the same amount in cells of that map.

Conventions: a *cell shift* (dx, dy) is the content displacement of the input in pixels divided
by the map's cumulative stride along each axis; positive values move content right/down. Integer cell shifts
use `torch.roll` (exact); fractional ones use band-limited Fourier interpolation of the
reference map (`jaggy.protocols.fourier`), the shiftability test of Simoncelli et al. (IEEE
Trans. Inf. Theory, 1992). For a periodic protocol (circular, fourier) the whole map is
compared; otherwise (crop) only the cells whose shifted reference position lies inside the map.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from ..protocols.fourier import fourier_shift_phases


def is_integer_shift(dx: float, dy: float, tol: float = 1e-9) -> bool:
    return abs(dx - round(dx)) < tol and abs(dy - round(dy)) < tol


def shift_matrix(size: int, shift: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """The real [size, size] matrix A such that `v @ A` is the band-limited circular shift of
    the row vector v by `shift` samples (`fourier_shift` along one axis, Nyquist bin as a
    cosine)."""
    return _shift_matrix64(int(size), float(shift)).to(device=device, dtype=dtype)


@lru_cache(maxsize=4096)
def _shift_matrix64(size: int, shift: float) -> torch.Tensor:
    eye = torch.eye(size, dtype=torch.float64)
    phases = fourier_shift_phases(1, size, shift, 0.0, dtype=torch.complex128)[0]
    return torch.fft.irfft(torch.fft.rfft(eye, dim=-1) * phases, n=size, dim=-1)


def shift_map(reference: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """The reference map [..., H, W] moved by (dx, dy) cells, circularly.

    Whole shifts use `torch.roll` (exact). Fractional ones apply the separable band-limited
    shift (`shift_matrix` along each axis; equal to `fourier_shift` to float precision), which
    on small maps is much cheaper than a 2-D FFT.

    Args:
        reference: real map [..., H, W].
        dx, dy: cell shift (right, down).
    """
    if is_integer_shift(dx, dy):
        return torch.roll(reference, shifts=(round(dy), round(dx)), dims=(-2, -1))
    height, width = reference.shape[-2:]
    out = reference
    # One large matrix product per axis (rows of all channels at once), not many tiny ones.
    if abs(dx - round(dx)) >= 1e-9:
        matrix = shift_matrix(width, dx, reference.dtype, reference.device)
        out = (out.reshape(-1, width) @ matrix).reshape(reference.shape)
    elif round(dx):
        out = torch.roll(out, shifts=round(dx), dims=-1)
    if abs(dy - round(dy)) >= 1e-9:
        matrix = shift_matrix(height, dy, reference.dtype, reference.device)
        columns = out.transpose(-2, -1).reshape(-1, height) @ matrix
        out = columns.reshape(*reference.shape[:-2], width, height).transpose(-2, -1)
    elif round(dy):
        out = torch.roll(out, shifts=round(dy), dims=-2)
    return out


def overlap(size: int, shift: float) -> slice:
    """Cells j of an axis of `size` cells whose source position j - shift lies inside the map
    for both neighbouring integers (an empty slice when the shift leaves nothing)."""
    start = min(size, max(0, math.ceil(shift)))
    stop = min(size, size + math.floor(shift))
    return slice(start, max(start, stop))


def equivariance_error(
    shifted: torch.Tensor,
    reference: torch.Tensor,
    dx: float,
    dy: float,
    periodic: bool = True,
) -> float:
    """Normalised equivariance error ||shifted - S(reference)|| / ||S(reference)||.

    S shifts by (dx, dy) cells (`shift_map`); the norms run over every element (periodic) or
    over the overlap cells (non-periodic, see `compare_maps`). NaN when the compared reference
    is all zero or no cell overlaps.

    Args:
        shifted: map of the shifted input [C, H, W].
        reference: map of the unshifted input [C, H, W].
        dx, dy: cell shift (content displacement in px / cumulative stride).
        periodic: whether the input shift was circular.
    """
    return compare_maps(shifted, shift_map(reference, dx, dy), dx, dy, periodic)


def compare_maps(
    shifted: torch.Tensor, expected: torch.Tensor, dx: float, dy: float, periodic: bool
) -> float:
    """||shifted - expected|| / ||expected||, over the whole map (periodic) or over the cells
    whose source position (i - dx, j - dy) lies inside the map (non-periodic)."""
    if not periodic:
        rows = overlap(expected.shape[-2], dy)
        cols = overlap(expected.shape[-1], dx)
        expected = expected[..., rows, cols]
        shifted = shifted[..., rows, cols]
    if expected.numel() == 0:
        return math.nan
    denominator = float(torch.linalg.vector_norm(expected))
    if not denominator > 0.0:
        return math.nan
    return float(torch.linalg.vector_norm(shifted - expected)) / denominator


def compare_batch(
    maps: torch.Tensor,
    expected: torch.Tensor,
    shifts: list[tuple[float, float]],
    periodic: bool,
) -> torch.Tensor:
    """`compare_maps` for a batch in a few large operations: maps and expected [B, C, H, W],
    `shifts[b]` the (dx, dy) cell shift of item b. Returns [B] float64 errors (NaN where the
    compared reference is zero or nothing overlaps)."""
    diff = maps - expected
    if not periodic:
        mask = torch.zeros(maps.shape[0], 1, *maps.shape[-2:], dtype=maps.dtype, device=maps.device)
        for b, (dx, dy) in enumerate(shifts):
            mask[b, :, overlap(maps.shape[-2], dy), overlap(maps.shape[-1], dx)] = 1.0
        diff = diff * mask
        expected = expected * mask
    numerator = torch.linalg.vector_norm(diff.flatten(1), dim=1).double()
    denominator = torch.linalg.vector_norm(expected.flatten(1), dim=1).double()
    errors = numerator / denominator
    return torch.where(denominator > 0, errors, torch.full_like(errors, math.nan))


def relative_change(vectors: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """||v_b - reference|| / ||reference|| for each row v_b of [B, D] (NaN for a zero reference)."""
    denominator = reference.double().norm()
    numerator = (vectors.double() - reference.double()).norm(dim=-1)
    if float(denominator) == 0.0:
        return torch.full_like(numerator, math.nan)
    return numerator / denominator
