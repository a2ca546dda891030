"""`fourier`: band-limited sub-pixel circular shifts of the standard input (fractions of a pixel).

A shift by (dx, dy) px multiplies the 2-D discrete Fourier transform of each channel by the phase
ramp exp(-2 pi i (fx dx + fy dy)) (fx, fy in cycles per pixel) and transforms back: the image is
treated as one period of a band-limited periodic signal, which is resampled at the shifted grid.
This is the shift under which the sampling theorem holds exactly, the natural test of
"shiftability" (Simoncelli, Freeman, Adelson & Heeger, IEEE Trans. Inf. Theory, 1992).
"""

from __future__ import annotations

import math

import torch

from ..errors import ArgumentError
from ._base import Protocol, SourceRequest, ViewParams
from ._paths import path_offsets
from ._registry import register_protocol

DEFAULT_STEP = 0.25


def fourier_shift_phases(
    height: int,
    width: int,
    dx: float,
    dy: float,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """The factor that shifts a real [..., H, W] signal in the `torch.fft.rfft2` domain.

    Multiplying `rfft2(x)` by this [H, W // 2 + 1] tensor and applying `irfft2(..., s=(H, W))`
    gives `fourier_shift(x, dx, dy)`. Computed in float64, then cast to `dtype`.

    The Nyquist bin of an even size is the one frequency whose sine cannot be represented; it
    is treated as a cosine and multiplied by cos(pi * shift), the real part of its phase factor.
    The result stays real, and an integer shift gives (-1)^shift there, exactly what a circular
    roll does.

    Args:
        height, width: size of the signal in pixels.
        dx, dy: shift in pixels; positive dx moves content right, positive dy moves it down.
    """
    fy = torch.fft.fftfreq(height, dtype=torch.float64)  # cycles per pixel, [H]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)  # [W // 2 + 1]
    phase_y = _axis_phase(fy, float(dy), height)
    phase_x = _axis_phase(fx, float(dx), width)
    return (phase_y[:, None] * phase_x[None, :]).to(device=device, dtype=dtype)


def _axis_phase(freqs: torch.Tensor, shift: float, size: int) -> torch.Tensor:
    """exp(-2 pi i f shift) along one axis; the Nyquist bin (even size) gets cos(pi shift)."""
    # Reduce an integer part modulo the size first: exact periods keep the phases exact.
    if float(shift).is_integer():
        shift = float(int(shift) % size)
    angle = -2.0 * math.pi * freqs * shift
    phase = torch.polar(torch.ones_like(angle), angle)
    if size % 2 == 0:
        phase[size // 2] = complex(math.cos(math.pi * shift), 0.0)
    return phase


def fourier_shift(x: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """Band-limited circular shift of the last two dimensions of `x` by (dx, dy) pixels.

    Convention: positive `dx` moves content right, positive `dy` moves it down; what leaves one
    border re-enters at the opposite one (the image is one period of a periodic signal). An
    integer shift equals `torch.roll(x, (dy, dx), dims=(-2, -1))` to float precision; two
    shifts compose exactly (s1 then s2 == s1 + s2) on signals with no energy at the Nyquist
    frequency of an even size.

    Args:
        x: real tensor [..., H, W] (float32 or float64; other dtypes are computed in float32).
        dx, dy: shift in pixels (any real number).

    Returns:
        A real tensor with the shape and floating dtype of `x`.

    Example:
        >>> x = torch.arange(8.0).view(1, 8)
        >>> torch.allclose(fourier_shift(x, 3, 0), torch.roll(x, 3, dims=-1), atol=1e-5)
        True
    """
    if x.ndim < 2:
        raise ArgumentError(f"fourier_shift needs a tensor [..., H, W]; got shape {tuple(x.shape)}")
    if not (math.isfinite(float(dx)) and math.isfinite(float(dy))):
        raise ArgumentError(f"fourier_shift: shifts must be finite numbers (got {dx}, {dy})")
    real = x if x.dtype in (torch.float32, torch.float64) else x.float()
    complex_dtype = torch.complex128 if real.dtype == torch.float64 else torch.complex64
    height, width = real.shape[-2:]
    phases = fourier_shift_phases(height, width, dx, dy, real.device, complex_dtype)
    spectrum = torch.fft.rfft2(real)
    return torch.fft.irfft2(spectrum * phases, s=(height, width))


@register_protocol
class FourierProtocol(Protocol):
    """View k is the standard eval input shifted by k * step px along the path with
    `fourier_shift` (circular and band-limited; step = `options.extra['fourier_step']`,
    default 0.25 px, i.e. 4 views per pixel). `ViewParams.dx/dy` are the shifts in px (floats);
    content moves right/down as in `circular`."""

    name = "fourier"
    description = "band-limited sub-pixel circular shifts (k * step px) of the standard input"

    @property
    def step(self) -> float:
        step = self.options.extra.get("fourier_step", DEFAULT_STEP)
        try:
            step = float(step)
        except (TypeError, ValueError):
            raise ArgumentError(
                f"--fourier-step must be a number of pixels (got {step!r})"
            ) from None
        if not math.isfinite(step) or step <= 0:
            raise ArgumentError(
                f"--fourier-step must be a positive number of pixels, e.g. 0.25 (got {step})"
            )
        return step

    def params(self) -> dict:
        return {**super().params(), "fourier_step": self.step}

    def source(self) -> SourceRequest:
        return SourceRequest("standard", self.input_size)

    def view_params(self) -> list[ViewParams]:
        step = self.step
        return [
            ViewParams(dx * step, dy * step, self.input_size)
            for dx, dy in path_offsets(self.options.path, self.options.steps)
        ]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        params = self.view_params()
        # One forward transform of the source serves every view.
        real = source if source.dtype in (torch.float32, torch.float64) else source.float()
        complex_dtype = torch.complex128 if real.dtype == torch.float64 else torch.complex64
        height, width = real.shape[-2:]
        spectrum = torch.fft.rfft2(real)
        phases = torch.stack(
            [
                fourier_shift_phases(
                    height, width, params[k].dx, params[k].dy, real.device, complex_dtype
                )
                for k in indices
            ]
        )  # [V, H, W // 2 + 1]
        return torch.fft.irfft2(spectrum.unsqueeze(0) * phases.unsqueeze(1), s=(height, width))
