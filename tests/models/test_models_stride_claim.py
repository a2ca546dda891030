"""The study's claim, exactly: a fully convolutional net with circular padding, global average
pooling and total stride s is invariant to circular shifts that are multiples of s (on inputs
whose size is a multiple of s) and, for a generic random net, not to other shifts."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def fully_convolutional(strides: list[int], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers, channels = [], 3
    for i, stride in enumerate(strides):
        out = 6 + 2 * i
        layers += [
            nn.Conv2d(channels, out, 3, stride=stride, padding=1, padding_mode="circular"),
            nn.ReLU(),
        ]
        channels = out
    return (
        nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 5))
        .double()
        .eval()
    )


@pytest.mark.parametrize("strides,total", [([2, 2], 4), ([2, 1, 2, 2], 8), ([1, 1], 1)])
def test_invariant_exactly_at_multiples_of_total_stride(strides, total):
    net = fully_convolutional(strides, seed=len(strides))
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = net(x)
        for dy in range(0, 9):
            for dx in range(0, 9):
                out = net(torch.roll(x, shifts=(dy, dx), dims=(2, 3)))
                if dx % total == 0 and dy % total == 0:
                    assert torch.allclose(out, base, atol=1e-10), (dx, dy)
                else:
                    assert not torch.allclose(out, base, atol=1e-6), (dx, dy)
