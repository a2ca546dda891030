"""Explicit-padding layers: dense (stride-1) evaluation on a strided layer's grid is exact."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from timm.layers import Conv2dSame
from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame
from torch import nn

from jaggy.errors import ArgumentError
from jaggy.remedies._grid import GridAvgPool2d, GridConv2d, GridMaxPool2d
from jaggy.remedies._padding import normalize_pad_mode, pad2d, same_pads

SIZES = [(7, 8), (8, 9), (11, 8)]


def _check(layer: nn.Module, grid_layer: nn.Module, dense_layer: nn.Module, stride: int):
    for height, width in SIZES:
        x = torch.randn(2, 3, height, width)
        try:
            expected = layer(x)
        except RuntimeError:  # geometry the original layer itself rejects
            continue
        torch.testing.assert_close(grid_layer(x), expected, rtol=0, atol=1e-5)
        dense = dense_layer(x)
        # The dense map keeps the original samples at multiples of the stride.
        torch.testing.assert_close(dense[..., ::stride, ::stride], expected, rtol=0, atol=1e-5)
        assert dense.shape[-2] <= stride * expected.shape[-2]


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation",
    list(itertools.product([1, 2, 3, 5], [2, 3], [0, 1, 2], [1, 2])),
)
def test_grid_conv_reproduces_torch_and_tf_same_convs(kernel, stride, padding, dilation):
    torch.manual_seed(kernel * 100 + stride * 10 + padding)
    for conv in (
        nn.Conv2d(3, 4, kernel, stride, padding, dilation),
        nn.Conv2d(3, 4, kernel, stride, padding, dilation, padding_mode="replicate"),
        Conv2dSame(3, 4, kernel, stride, dilation=dilation),
    ):
        _check(
            conv,
            GridConv2d.from_conv(conv, dense=False),
            GridConv2d.from_conv(conv, dense=True),
            stride,
        )


def test_tf_same_strided_conv_keeps_its_own_split_when_dense():
    # TF 'SAME' at stride 2 on an even size pads (0, 1) for k=3, unlike the symmetric (1, 1)
    # of the same conv at stride 1; the dense version must keep the strided layer's left pad.
    assert same_pads(8, 3, 2) == (0, 1) and same_pads(8, 3, 1) == (1, 1)
    conv = Conv2dSame(1, 1, 3, 2, bias=False)
    dense = GridConv2d.from_conv(conv, dense=True)
    assert dense.grid_pads(8, 8) == (0, 2, 0, 2)
    x = torch.randn(1, 1, 8, 8)
    torch.testing.assert_close(dense(x)[..., ::2, ::2], conv(x))


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation,ceil_mode",
    [
        combo
        for combo in itertools.product([2, 3, 5], [2, 3], [0, 1, 2], [1, 2], [False, True])
        if combo[2] <= combo[0] // 2
    ],  # torch rejects padding > kernel / 2
)
def test_grid_pools_reproduce_torch_and_tf_same_pools(kernel, stride, padding, dilation, ceil_mode):
    pools = [nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)]
    if dilation == 1:
        pools += [
            nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil_mode),
            nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=False),
        ]
        if padding == 0 and not ceil_mode:
            pools += [MaxPool2dSame(kernel, stride), AvgPool2dSame(kernel, stride)]
    for pool in pools:
        grid = GridMaxPool2d if isinstance(pool, nn.MaxPool2d) else GridAvgPool2d
        _check(pool, grid.from_pool(pool, dense=False), grid.from_pool(pool, dense=True), stride)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "zero", "circular"])
def test_pad2d_matches_numpy_even_for_pads_wider_than_the_map(mode):
    numpy_mode = {
        "reflect": "reflect",
        "replicate": "edge",
        "zero": "constant",
        "circular": "wrap",
    }[mode]
    x = np.random.default_rng(0).normal(size=(1, 2, 3, 4))
    for pads in [(1, 2, 0, 1), (4, 5, 3, 7), (0, 0, 2, 2)]:
        out = pad2d(torch.from_numpy(x), pads, mode)
        left, right, top, bottom = pads
        expected = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=numpy_mode)
        np.testing.assert_array_equal(out.numpy(), expected)


def test_pad2d_crops_with_negative_pads():
    x = torch.arange(20.0).view(1, 1, 4, 5)
    assert torch.equal(pad2d(x, (0, -1, -1, 0), "circular"), x[..., 1:, :4])


def test_pad_mode_names():
    assert normalize_pad_mode("zeros") == "zero" and normalize_pad_mode("Wrap") == "circular"
    with pytest.raises(ArgumentError, match="choose one of"):
        normalize_pad_mode("mirror")
