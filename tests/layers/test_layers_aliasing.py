"""Aliasing energy: analytic sinusoids, blurred versus unblurred subsampling, and the effect of a
nonlinearity before a subsampling layer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from jaggy.layers import aliasing_energy, analyze_layers, shift_protocol
from jaggy.layers._aliasing import dense_output

BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def stripes(freq: float, size: int = 32, channels: int = 1) -> torch.Tensor:
    n = torch.arange(size, dtype=torch.float32)
    return torch.cos(2 * math.pi * freq * n).expand(channels, size, size).clone()


def test_aliasing_energy_of_sinusoids():
    assert aliasing_energy(stripes(1 / 8), 2) < 1e-10  # below the stride-2 Nyquist (1/4)
    assert abs(aliasing_energy(stripes(1 / 8), 8) - 1.0) < 1e-6  # above 1/16
    assert aliasing_energy(stripes(1 / 8), 4) < 1e-10  # exactly at 1/8: not above
    mix = stripes(1 / 16) + stripes(3 / 8)  # equal power below and above 1/4
    assert abs(aliasing_energy(mix, 2) - 0.5) < 1e-6
    two_channels = torch.cat([stripes(1 / 16), stripes(3 / 8)])
    assert abs(aliasing_energy(two_channels, 2) - 0.5) < 1e-6  # mean over channels
    vertical = stripes(3 / 8).transpose(-2, -1)
    assert abs(aliasing_energy(vertical, (2, 1)) - 1.0) < 1e-6
    assert aliasing_energy(vertical, (1, 2)) < 1e-10  # per-axis strides


def test_constant_channels_are_left_out():
    x = torch.cat([torch.full((1, 16, 16), 3.0), stripes(3 / 8, 16)])
    assert abs(aliasing_energy(x, 2) - 1.0) < 1e-6
    assert math.isnan(aliasing_energy(torch.ones(2, 8, 8), 2))


class Blur(nn.Module):
    """Fixed depthwise binomial blur (stride 1, reflect padding)."""

    def __init__(self, channels: int):
        super().__init__()
        kernel = BINOMIAL[:, None] * BINOMIAL[None, :]
        self.register_buffer("kernel", kernel.expand(channels, 1, 5, 5).clone())

    def forward(self, x):
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.kernel, groups=x.shape[1])


class BlurredConv(nn.Module):
    """Blur, then a strided 3x3 conv, in one module with a `stride` attribute (BlurPool-like)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.weight = conv.weight
        self.blur = Blur(conv.in_channels).kernel
        self.stride = conv.stride

    def forward(self, x):
        x = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.blur, groups=x.shape[1])
        return F.conv2d(x, self.weight, stride=self.stride, padding=1)


def textured(n: int = 2, side: int = 32, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3, side, side, generator=g) for _ in range(n)]


def nets():
    torch.manual_seed(0)
    first = nn.Conv2d(3, 6, 3, padding=1)
    strided = nn.Conv2d(6, 6, 3, stride=2, padding=1)
    plain = nn.Sequential(first, nn.ReLU(), strided).eval()
    blurred = nn.Sequential(first, nn.ReLU(), Blur(6), strided).eval()
    inside = nn.Sequential(first, nn.ReLU(), BlurredConv(strided)).eval()
    return plain, blurred, inside


def test_blurred_subsampling_has_lower_aliasing_energy():
    plain, blurred, inside = nets()
    protocol = shift_protocol("circular", 32, 1)
    images = textured()
    r_plain = analyze_layers(plain, images, protocol)
    r_blur = analyze_layers(blurred, images, protocol)
    r_inside = analyze_layers(inside, images, protocol)
    assert [layer.name for layer in r_plain.stride_map.subsampling] == ["2"]
    assert [layer.name for layer in r_blur.stride_map.subsampling] == ["3"]
    assert [layer.name for layer in r_inside.stride_map.subsampling] == ["2"]
    plain_in = r_plain.aliasing_input.mean()
    # a separate blur before the strided conv: its input has less power above 1/4
    assert r_blur.aliasing_input.mean() < 0.5 * plain_in
    # blur inside the subsampling module: its input is unchanged, what it samples is smoother
    assert abs(r_inside.aliasing_input.mean() - plain_in) < 1e-6
    assert r_inside.aliasing_dense.mean() < 0.5 * r_plain.aliasing_dense.mean()
    # the layer equivariance follows: off-grid shifts are closer to shifted maps
    protocol = shift_protocol("circular", 32, 3, path="horizontal")
    smooth = [F.avg_pool2d(x[None], 3, 1, 1)[0] for x in images]
    e_plain = analyze_layers(plain, smooth, protocol).mean_errors()[-1, 1::2].mean()
    e_blur = analyze_layers(blurred, smooth, protocol).mean_errors()[-1, 1::2].mean()
    assert e_blur < e_plain


def test_nonlinearity_before_subsampling_creates_aliasing():
    # channel mean -> ReLU -> strided 1x1 conv (stride 4, Nyquist 1/8 cycle/px).
    conv = nn.Conv2d(3, 1, 1, bias=False)
    down = nn.Conv2d(1, 1, 1, stride=4, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0 / 3.0)
        down.weight.fill_(1.0)
    net = nn.Sequential(conv, nn.ReLU(), down).eval()
    image = stripes(1 / 8, 32, 3)  # exactly at the new Nyquist: nothing above it yet
    report = analyze_layers(net, [image], shift_protocol("circular", 32, 1))
    layer = report.stride_map.subsampling[0]
    assert layer.nonlinearity == "1"
    before = float(report.aliasing_before_nonlinearity[0, 0])
    after = float(report.aliasing_input[0, 0])
    assert before < 1e-10
    assert after > 0.1  # half-wave rectification adds harmonics at 1/4, 3/8, ...
    data = report.to_dict()["layers"][layer.index]
    assert data["aliasing_energy_before_nonlinearity"] < 1e-10 < data["aliasing_energy"]
    assert data["nonlinearity"] == "1"


def test_dense_output_restores_the_stride():
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    pool = nn.MaxPool2d(2)
    x = torch.randn(1, 2, 8, 8)
    assert dense_output(conv, x).shape == (1, 3, 8, 8) and conv.stride == (2, 2)
    torch.testing.assert_close(dense_output(conv, x)[..., ::2, ::2], conv(x))
    assert dense_output(pool, x).shape == (1, 2, 7, 7) and pool.stride == 2
    assert dense_output(nn.Sequential(conv), x) is None  # containers have no own stride
    assert dense_output(nn.ReLU(), x) is None
