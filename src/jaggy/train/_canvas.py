"""The canvas data set: scikit-learn's handwritten digits pasted into a larger black canvas with
a photographer's bias (positions and sizes drawn from a distribution centred in the canvas).

Conventions: a placement is (x, y, s): the digit is an s x s image whose top-left corner sits
at (x, y) px on the R x R canvas (x right, y down); its centre is (x + s/2, y + s/2). Every
digit image is made the way the audit engine makes its sources: the 8 x 8 digit becomes a
32 x 32 grey RGB *master* image (bilinear), which is resized to s x s by
`jaggy.data.prepare_source` with the model's interpolation, so the training canvases and the
audited views are built from identical pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data._decode import prepare_source
from ..models import Preprocessing
from ..protocols import SourceRequest
from ..results._atomic import atomic_write, atomic_write_json, atomic_write_text

MASTER_SIDE = 32  # px: the digit image files (the engine refuses images under 16 px)
AUGMENTATIONS = ("none", "translate", "left_half")


@dataclass(frozen=True)
class CanvasGeometry:
    """Where the photographer puts the digits. Sizes and positions in px.

    size_mean, size_std, size_range: s ~ round(Normal(size_mean, size_std)) clipped to the range.
    position_std: each coordinate of the centre ~ Normal(canvas / 2, position_std), then the
        digit is clipped into the canvas.
    """

    canvas: int = 40
    size_mean: float = 14.0
    size_std: float = 1.5
    size_range: tuple[int, int] = (10, 18)
    position_std: float = 4.0

    def to_dict(self) -> dict:
        return {
            "canvas": self.canvas,
            "size_mean": self.size_mean,
            "size_std": self.size_std,
            "size_range": list(self.size_range),
            "position_std": self.position_std,
        }


@dataclass
class DigitSplit:
    """Digits split into training and held-out sets (8 x 8 images, 0..16; labels 0..9)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    heldout_images: np.ndarray
    heldout_labels: np.ndarray


def load_digit_split(
    seed: int, heldout_fraction: float, train_limit: int | None = None
) -> DigitSplit:
    """scikit-learn's 1797 digits (shipped in its wheel: no download), shuffled with `seed`
    and split per class, so both sets hold every digit in the data set's proportions."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images.astype(np.float64), digits.target.astype(np.int64)
    rng = np.random.default_rng([seed, 1])
    train, heldout = [], []
    for label in range(10):
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(len(members))]
        n_heldout = int(round(len(members) * heldout_fraction))
        heldout.extend(members[:n_heldout].tolist())
        train.extend(members[n_heldout:].tolist())
    # shuffled again so that the classes interleave (any prefix holds every class)
    train = np.array(train)[rng.permutation(len(train))]
    heldout = np.array(heldout)[rng.permutation(len(heldout))]
    if train_limit is not None:
        train = train[:train_limit]
    return DigitSplit(images[train], labels[train], images[heldout], labels[heldout])


def master_image(digit: np.ndarray) -> Image.Image:
    """An 8 x 8 digit (0..16) as the 32 x 32 grey RGB master image."""
    grey = np.clip(np.round(digit / 16.0 * 255.0), 0, 255).astype(np.uint8)
    small = Image.fromarray(grey, "L")
    return small.resize((MASTER_SIDE, MASTER_SIDE), Image.Resampling.BILINEAR).convert("RGB")


def digit_sprite(master: Image.Image, size: int, prep: Preprocessing) -> torch.Tensor:
    """The master resized to `size` exactly as the engine makes a `canvas` source, normalised
    ([3, size, size] float32)."""
    uint8 = prepare_source(master, SourceRequest("square", size), prep.interpolation, 1.0)
    return prep.normalize(uint8)


def photographer_placements(
    n: int, geometry: CanvasGeometry, rng: np.random.Generator
) -> np.ndarray:
    """[n, 3] int placements (x, y, s) with the photographer's bias."""
    lo, hi = geometry.size_range
    sizes = np.clip(np.round(rng.normal(geometry.size_mean, geometry.size_std, n)), lo, hi)
    sizes = sizes.astype(np.int64)
    centres = rng.normal(geometry.canvas / 2.0, geometry.position_std, (n, 2))
    corners = np.round(centres - sizes[:, None] / 2.0).astype(np.int64)
    corners = np.clip(corners, 0, geometry.canvas - sizes[:, None])
    return np.column_stack([corners, sizes])


def augmented_placements(
    base: np.ndarray, augment: str, canvas: int, rng: np.random.Generator
) -> np.ndarray:
    """Placements for one epoch: `none` keeps the data set's; `translate` moves every digit to
    a uniformly drawn position of the whole canvas; `left_half` to a uniform position whose
    centre lies in the left half (x + s/2 <= canvas/2), y anywhere. Sizes never change."""
    if augment == "none":
        return base.copy()
    sizes = base[:, 2]
    y = rng.integers(0, canvas - sizes + 1)
    if augment == "translate":
        x = rng.integers(0, canvas - sizes + 1)
    elif augment == "left_half":
        x = rng.integers(0, np.floor(canvas / 2.0 - sizes / 2.0).astype(np.int64) + 1)
    else:
        raise ValueError(f"unknown augmentation {augment!r}; one of {AUGMENTATIONS}")
    return np.column_stack([x, y, sizes]).astype(np.int64)


def placement_centres(placements: np.ndarray) -> np.ndarray:
    """[n, 2] centres (x + s/2, y + s/2) in px."""
    placements = np.asarray(placements, dtype=np.float64)
    return placements[:, :2] + placements[:, 2:3] / 2.0


class SpriteBank:
    """Normalised digit images per (digit, size), made once (the masters are PIL images)."""

    def __init__(self, digits: np.ndarray, prep: Preprocessing):
        self.masters = [master_image(d) for d in digits]
        self.prep = prep
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.masters)

    def get(self, index: int, size: int) -> torch.Tensor:
        key = (int(index), int(size))
        if key not in self._cache:
            self._cache[key] = digit_sprite(self.masters[key[0]], key[1], self.prep)
        return self._cache[key]

    def canvases(self, indices, placements: np.ndarray, canvas: int) -> torch.Tensor:
        """[len(indices), 3, R, R] normalised canvases: digit indices[i] at placements[i]."""
        black = torch.tensor(self.prep.black_value(), dtype=torch.float32).view(1, 3, 1, 1)
        out = black.expand(len(indices), 3, canvas, canvas).clone()
        for i, (index, (x, y, s)) in enumerate(zip(indices, placements, strict=True)):
            out[i, :, y : y + s, x : x + s] = self.get(index, s)
        return out


def centred_placements(n: int, size: int, canvas: int) -> np.ndarray:
    """Every digit at the canvas centre at one size (the reference view for typicality)."""
    corner = (canvas - size) // 2
    return np.tile(np.array([[corner, corner, size]], dtype=np.int64), (n, 1))


def write_digit_files(folder: Path, digits: np.ndarray, labels: np.ndarray) -> Path:
    """Masters as PNG files plus a file list (`path<TAB>label`) that `jaggy audit` reads;
    returns the list's path. Each file goes through the atomic writer."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        name = f"{i:04d}.png"
        image = master_image(digit)
        atomic_write(folder / name, lambda tmp, image=image: image.save(tmp, format="PNG"))
        lines.append(f"{folder.name}/{name}\t{int(label)}")
    listing = folder.parent / f"{folder.name}.txt"
    atomic_write_text(listing, "\n".join(lines) + "\n")
    return listing


def write_coco_boxes(
    path: Path,
    placements: np.ndarray,
    labels: np.ndarray,
    canvas: int,
    class_names: list[str],
    *,
    prefix: str,
    description: str,
) -> None:
    """The placements as COCO instances JSON: one image per canvas (`file_name` names it; the
    canvases are made on the fly, not stored), one box [x, y, w, h] in px per digit,
    categories 1..10 named by the class names."""
    images, annotations = [], []
    for i, ((x, y, s), label) in enumerate(zip(placements, labels, strict=True)):
        images.append(
            {"id": i + 1, "file_name": f"{prefix}/{i:05d}.png", "width": canvas, "height": canvas}
        )
        annotations.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": int(label) + 1,
                "bbox": [int(x), int(y), int(s), int(s)],
                "area": int(s) * int(s),
                "iscrowd": 0,
            }
        )
    atomic_write_json(
        path,
        {
            "info": {"description": description},
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(class_names)],
        },
    )


def batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A seeded shuffle of range(n) cut into batches (the last one may be smaller)."""
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)
