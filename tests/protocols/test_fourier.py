"""The `fourier` protocol and `fourier_shift`: exact against torch.roll and analytic sinusoids."""

from __future__ import annotations

import math

import pytest
import torch

from jaggy.errors import ArgumentError
from jaggy.models import Preprocessing
from jaggy.protocols import ProtocolOptions, build_protocols, list_protocols
from jaggy.protocols.fourier import fourier_shift, fourier_shift_phases


def band_limited(shape, seed=0, dtype=torch.float64):
    """Random real signal with no energy at (or near) the Nyquist frequency of either axis."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype)
    h, w = shape[-2:]
    spectrum = torch.fft.fft2(x)
    fy = torch.fft.fftfreq(h, dtype=torch.float64).abs()
    fx = torch.fft.fftfreq(w, dtype=torch.float64).abs()
    keep = (fy[:, None] < 0.4) & (fx[None, :] < 0.4)
    return torch.fft.ifft2(spectrum * keep).real.to(dtype)


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (2, 3, 6, 5), (3, 16, 10), (1, 1)])
@pytest.mark.parametrize("shift", [(1, 0), (0, 1), (3, -2), (-5, 7), (17, 33)])
def test_integer_shift_equals_roll(shape, shift):
    x = torch.randn(shape)
    dx, dy = shift
    expected = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    result = fourier_shift(x, dx, dy)
    assert result.shape == x.shape and result.dtype == x.dtype
    torch.testing.assert_close(result, expected, atol=2e-6, rtol=0)


def test_integer_shift_float64_is_roll_to_double_precision():
    x = torch.randn(2, 10, 12, dtype=torch.float64)
    assert torch.allclose(fourier_shift(x, 5, 3), torch.roll(x, (3, 5), (-2, -1)), atol=1e-12)


@pytest.mark.parametrize("shape", [(16, 16), (12, 10), (3, 9, 15)])
def test_two_half_shifts_equal_one_whole_shift_on_band_limited_input(shape):
    x = band_limited(shape)
    twice = fourier_shift(fourier_shift(x, 0.5, 0.5), 0.5, 0.5)
    once = fourier_shift(x, 1.0, 1.0)
    torch.testing.assert_close(twice, once, atol=1e-10, rtol=0)
    torch.testing.assert_close(once, torch.roll(x, (1, 1), (-2, -1)), atol=1e-10, rtol=0)


def test_half_shifts_do_not_compose_at_the_nyquist_frequency():
    # The one frequency a sampled grid cannot shift: cos(pi n) shifted by 1/2 becomes 0.
    n = torch.arange(8, dtype=torch.float64)
    x = torch.cos(math.pi * n).expand(8, 8).clone()
    half = fourier_shift(x, 0.5, 0.0)
    assert torch.allclose(half, torch.zeros_like(half), atol=1e-12)
    assert not torch.allclose(fourier_shift(half, 0.5, 0.0), fourier_shift(x, 1.0, 0.0))


def test_sub_pixel_shift_of_a_sinusoid_is_the_shifted_sinusoid():
    h, w, k = 12, 20, 3  # 3 cycles across the width
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    x = torch.sin(2 * math.pi * k * xx / w + 0.3) + 0.5 * torch.cos(2 * math.pi * 2 * yy / h)
    dx, dy = 0.37, -1.25
    expected = torch.sin(2 * math.pi * k * (xx - dx) / w + 0.3) + 0.5 * torch.cos(
        2 * math.pi * 2 * (yy - dy) / h
    )
    torch.testing.assert_close(fourier_shift(x, dx, dy), expected, atol=1e-10, rtol=0)


def test_output_is_real_and_energy_preserving_without_nyquist():
    x = band_limited((3, 14, 14), seed=3)
    y = fourier_shift(x, 0.3, 0.7)
    assert not y.is_complex()
    assert torch.allclose(y.pow(2).sum(), x.pow(2).sum(), rtol=1e-10)


def test_phases_are_exact_roll_factors_for_integers():
    phases = fourier_shift_phases(6, 6, 2, 3, dtype=torch.complex128)
    x = torch.randn(6, 6, dtype=torch.float64)
    y = torch.fft.irfft2(torch.fft.rfft2(x) * phases, s=(6, 6))
    assert torch.allclose(y, torch.roll(x, (3, 2), (0, 1)), atol=1e-12)


def test_uint8_input_is_computed_in_float():
    x = torch.randint(0, 255, (3, 8, 8), dtype=torch.uint8)
    y = fourier_shift(x, 1, 0)
    assert y.dtype == torch.float32
    assert torch.allclose(y, torch.roll(x.float(), 1, -1), atol=1e-4)


def test_bad_arguments():
    with pytest.raises(ArgumentError):
        fourier_shift(torch.zeros(5), 1, 0)
    with pytest.raises(ArgumentError):
        fourier_shift(torch.zeros(4, 4), float("nan"), 0)


def make(steps=9, path="diagonal", **extra):
    prep = Preprocessing(input_size=16)
    options = ProtocolOptions(path=path, steps=steps, extra=extra)
    return build_protocols(["fourier"], prep, options)[0]


def test_protocol_is_registered_with_standard_source():
    assert "fourier" in list_protocols()
    protocol = make()
    assert protocol.source().kind == "standard" and protocol.source().side == 16
    assert protocol.params()["fourier_step"] == 0.25


def test_protocol_views_are_quarter_pixel_shifts():
    protocol = make(steps=9)
    params = protocol.view_params()
    assert [p.dx for p in params] == [0.25 * k for k in range(9)]
    assert all(isinstance(p.dx, float) for p in params)
    source = torch.randn(3, 16, 16)
    views = protocol.make_views(source, range(9))
    assert views.shape == (9, 3, 16, 16)
    torch.testing.assert_close(views[0], source, atol=2e-6, rtol=0)
    torch.testing.assert_close(views[4], torch.roll(source, (1, 1), (-2, -1)), atol=2e-6, rtol=0)
    torch.testing.assert_close(views[8], torch.roll(source, (2, 2), (-2, -1)), atol=2e-6, rtol=0)
    torch.testing.assert_close(views[3], fourier_shift(source, 0.75, 0.75), atol=2e-6, rtol=0)
    part = protocol.make_views(source, range(2, 5))
    torch.testing.assert_close(part, views[2:5])


def test_protocol_step_option_and_validation():
    protocol = make(steps=3, path="horizontal", fourier_step=0.5)
    assert [(p.dx, p.dy) for p in protocol.view_params()] == [(0.0, 0.0), (0.5, 0.0), (1.0, 0.0)]
    for bad in (0, -0.25, float("inf"), "x"):
        with pytest.raises(ArgumentError):
            make(fourier_step=bad)
