"""Shared fixtures: tiny random CNNs (tests/tinynets.py) and synthetic image folders."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

TESTS = Path(__file__).parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))  # so `py:tinynets:...` specs resolve, also in subprocesses

torch.set_num_threads(1)


def write_synthetic_images(folder: Path, n: int, side: int = 48, seed: int = 0) -> list[Path]:
    """n smooth random RGB PNGs (blobs, so views differ meaningfully)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    yy, xx = np.mgrid[0:side, 0:side]
    for i in range(n):
        image = np.zeros((side, side, 3))
        for _ in range(4):
            cx, cy, r = rng.uniform(0, side, 2).tolist() + [rng.uniform(4, side / 3)]
            color = rng.uniform(0, 1, 3)
            image += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None] * color
        image = (np.clip(image / image.max(), 0, 1) * 255).astype(np.uint8)
        path = folder / f"img{i:03d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    write_synthetic_images(folder, 6)
    return folder
