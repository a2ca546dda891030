"""Per-layer equivariance and shiftability on analytic cases (tiny nets, synthetic inputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from jaggy.errors import ArgumentError
from jaggy.layers import (
    LayerAnalysis,
    analyze_layers,
    equivariance_error,
    shift_map,
    shift_protocol,
)
from jaggy.layers._equivariance import overlap
from jaggy.protocols.fourier import fourier_shift


def circ(cin, cout, k=3, stride=1, groups=1):
    return nn.Conv2d(
        cin, cout, k, stride=stride, padding=k // 2, padding_mode="circular", groups=groups
    )


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = circ(c, c, groups=c)  # depthwise
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return x + self.act(self.bn(self.conv(x)))


def circular_net(stride2: bool = False, relu: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    act = nn.ReLU() if relu else nn.Identity()
    net = nn.Sequential(
        circ(3, 6),
        nn.BatchNorm2d(6),
        act,
        circ(6, 6, stride=2 if stride2 else 1),
        Residual(6) if relu else nn.Identity(),
        circ(6, 4, k=5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 5),
    )
    for m in net.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def smooth_images(n: int, side: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = []
    for _ in range(n):
        x = torch.randn(1, 3, side // 4, side // 4, generator=g)
        images.append(nn.functional.interpolate(x, size=(side, side), mode="bilinear")[0])
    return images


@pytest.mark.parametrize("path", ["diagonal", "horizontal", "grid"])
def test_stride1_circular_net_is_exactly_equivariant_at_every_layer(path):
    net = circular_net()
    protocol = shift_protocol("circular", 24, 5 if path != "grid" else 2, path=path)
    report = analyze_layers(net, smooth_images(2, 24), protocol, batch_size=3)
    assert len(report.layers) >= 7
    assert all(layer.cumulative_stride == (1, 1) for layer in report.layers)
    assert np.all(np.isfinite(report.errors))
    assert report.errors.max() < 1e-5
    assert np.nanmax(report.pooled) < 1e-5 and np.nanmax(report.logits) < 1e-5


def test_one_stride2_layer_is_exact_at_even_shifts_only():
    net = circular_net(stride2=True)
    protocol = shift_protocol("circular", 24, 6, path="horizontal")
    report = analyze_layers(net, smooth_images(2, 24), protocol, batch_size=4)
    mean = report.mean_errors()
    for li, layer in enumerate(report.layers):
        if layer.cumulative_stride == (1, 1):
            assert mean[li].max() < 1e-5, layer.name
            continue
        assert layer.cumulative_stride == (2, 2)
        even, odd = mean[li, 2::2], mean[li, 1::2]
        assert even.max() < 1e-5, layer.name
        assert odd.min() > 1e-2, layer.name
        assert report.on_grid(li, 2) and not report.on_grid(li, 1)
    assert np.nanmax(report.pooled[:, 2::2]) < 1e-5 < np.nanmin(report.pooled[:, 1::2])


def test_linear_stride1_net_commutes_with_sub_pixel_fourier_shifts():
    net = circular_net(relu=False)
    protocol = shift_protocol("fourier", 16, 6, path="diagonal", fourier_step=0.3)
    report = analyze_layers(net, smooth_images(1, 16), protocol)
    assert report.errors.max() < 1e-4


def test_nonlinearity_breaks_sub_pixel_shiftability():
    net = circular_net(relu=True)
    protocol = shift_protocol("fourier", 16, 4, path="horizontal", fourier_step=0.5)
    report = analyze_layers(net, smooth_images(1, 16), protocol)
    names = [layer.name for layer in report.layers]
    conv = names.index("0")
    relu = names.index("2")
    mean = report.mean_errors()
    assert mean[conv].max() < 1e-4  # linear so far
    assert mean[relu, 1] > 1e-3  # half-pixel shift after the ReLU: not a shifted map
    assert mean[relu, 2] < 1e-4  # a whole pixel is a roll again


def test_crop_compares_overlapping_cells_with_opposite_content_shift():
    torch.manual_seed(0)
    pointwise = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 1, stride=2), nn.ReLU()
    ).eval()
    protocol = shift_protocol("crop", 16, 4, path="horizontal")
    source = smooth_images(1, protocol.source().side)[0]
    analysis = LayerAnalysis(pointwise, protocol)
    analysis.update(source, "img")
    report = analysis.compute()
    assert report.displacements[1] == (-1.0, 0.0)  # (dx, dy): window right = content left
    assert report.cell_shifts[2][2] == (-1.0, 0.0)  # stride-2 layer, 2 px
    mean = report.mean_errors()
    assert mean[:2].max() < 1e-6  # stride 1, every shift: exact on the overlap
    assert mean[2:, 2::2].max() < 1e-6  # stride 2, even shifts
    assert mean[2:, 1::2].min() > 1e-3  # stride 2, odd shifts
    assert np.isnan(report.logits).all()  # a model without [N, K] output has no logits curve


def test_zero_padded_net_under_crop_is_not_exact_at_the_border():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    protocol = shift_protocol("crop", 16, 3, path="diagonal")
    report = analyze_layers(net, [smooth_images(1, protocol.source().side)[0]], protocol)
    assert report.mean_errors()[0, 1:].min() > 1e-4


def test_equivariance_error_functions():
    ref = torch.randn(3, 8, 10)
    # (dx, dy) cells: 3 left and 2 down
    assert equivariance_error(torch.roll(ref, (2, -3), (-2, -1)), ref, -3, 2) == 0.0
    sub = fourier_shift(ref, 0.5, 0.25)
    assert equivariance_error(sub, ref, 0.5, 0.25) < 1e-6
    assert equivariance_error(ref, ref, 1.0, 0.0) > 0.1
    torch.testing.assert_close(
        shift_map(ref, -0.5, 1.5), fourier_shift(ref, -0.5, 1.5), atol=1e-5, rtol=0
    )
    assert math.isnan(equivariance_error(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), 0, 1))
    assert overlap(8, 2) == slice(2, 8) and overlap(8, -3) == slice(0, 5)
    assert overlap(8, 0.5) == slice(1, 8) and overlap(8, -0.5) == slice(0, 7)
    assert overlap(4, 9) == slice(4, 4)
    shifted = torch.roll(ref, 2, -1)
    shifted[..., :2] = 99.0  # content that entered at the border is not compared
    assert equivariance_error(shifted, ref, 2, 0, periodic=False) == 0.0


def test_many_images_accumulate_per_image_results():
    net = circular_net(stride2=True)
    protocol = shift_protocol("circular", 16, 3)
    analysis = LayerAnalysis(net, protocol, batch_size=2)
    for i, image in enumerate(smooth_images(3, 16)):
        analysis.update(image, f"im{i}")
    analysis.skip("broken.png", "cannot decode")
    report = analysis.compute()
    assert report.image_ids == ["im0", "im1", "im2"]
    assert report.errors.shape == (3, len(report.layers), 4)
    assert report.aliasing_input.shape == (3, 1)
    assert report.skipped == [{"image_id": "broken.png", "reason": "cannot decode"}]
    assert report.feature_maps.image_id == "im0"


def test_bad_arguments():
    net = circular_net()
    with pytest.raises(ArgumentError):
        shift_protocol("black", 16, 3)
    with pytest.raises(ArgumentError):
        shift_protocol("circular", 16, 0)
    with pytest.raises(ArgumentError):
        LayerAnalysis(net, shift_protocol("circular", 16, 2), show_layers=["nope"])
    with pytest.raises(ArgumentError):
        LayerAnalysis(net, shift_protocol("circular", 16, 2), batch_size=0)
    with pytest.raises(ArgumentError):
        LayerAnalysis(nn.Flatten(), shift_protocol("circular", 16, 2))
    with pytest.raises(ArgumentError):
        LayerAnalysis(circular_net().train(), shift_protocol("circular", 16, 2))
    analysis = LayerAnalysis(net, shift_protocol("crop", 16, 2))
    with pytest.raises(ArgumentError):
        analysis.update(torch.zeros(3, 16, 16))  # crop needs R + T + 1 = 19 px


def test_vit_patch_tokens_are_exact_at_multiples_of_the_patch_size():
    import timm

    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1).eval()
    protocol = shift_protocol("circular", 32, 8, path="horizontal")
    report = analyze_layers(vit, smooth_images(1, 32), protocol)
    mean = report.mean_errors()
    for name in ("patch_embed.proj", "patch_embed"):
        layer = report.stride_map.layer(name)
        assert mean[layer.index, 8] < 1e-5 < 0.05 < mean[layer.index, 1:8].min()
    assert np.isfinite(report.logits).all()
