"""Tiny random CNNs for fast tests, loadable as `py:tinynets:<factory>` model specs."""

from __future__ import annotations

import torch
from torch import nn

TINY_PREPROCESSING = {
    "input_size": 32,
    "crop_pct": 0.875,
    "interpolation": "bilinear",
    "mean": (0.5, 0.5, 0.5),
    "std": (0.25, 0.25, 0.25),
}


class TinyCNN(nn.Module):
    """Conv(stride 2) -> ReLU -> Conv(stride 2) -> ReLU -> global average pool -> linear."""

    def __init__(
        self, num_classes: int = 10, width: int = 8, padding_mode: str = "zeros", seed: int = 0
    ):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, padding_mode=padding_mode),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, padding_mode=padding_mode),
            nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, num_classes)
        self.jaggy_preprocessing = dict(TINY_PREPROCESSING)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def tiny() -> nn.Module:
    """10 classes, 32 px input."""
    return TinyCNN()


def tiny1000() -> nn.Module:
    """1000 classes (ImageNet-sized head), 32 px input."""
    return TinyCNN(num_classes=1000)


def not_a_module():
    return "nope"


def tiny_jumpy() -> nn.Module:
    """A tiny net with a sharp head, so 1-px shifts flip its top-1 answer often."""
    net = TinyCNN(num_classes=10, width=8, seed=1)
    with torch.no_grad():
        net.head.weight.mul_(60.0)
    return net


def tiny_jumpy1000() -> nn.Module:
    """1000 classes and a sharp head: top-1 and top-5 membership both change under shifts."""
    net = TinyCNN(num_classes=1000, width=8, seed=1)
    with torch.no_grad():
        net.head.weight.mul_(3.0)
    return net


def tiny_jumpy224() -> nn.Module:
    """tiny_jumpy at ImageNet's 224 px input (the geometry of the papers' own protocols)."""
    net = tiny_jumpy()
    net.jaggy_preprocessing = {**TINY_PREPROCESSING, "input_size": 224}
    return net


class TinyEncoder(nn.Module):
    """TinyCNN without its head: the pooled features [N, 16]; `num_classes = 0` says so."""

    num_classes = 0

    def __init__(self, seed: int = 1):
        super().__init__()
        self.features = TinyCNN(seed=seed).features
        self.jaggy_preprocessing = dict(TINY_PREPROCESSING)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def tiny_headless() -> nn.Module:
    """A feature extractor without a classifier (num_classes = 0), 32 px input."""
    return TinyEncoder()
