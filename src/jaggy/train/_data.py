"""A user's images for training: ImageFolder classes, a seeded held-out split, augmentation
specs, and the datasets that decode and transform them.

Conventions: `--augment` is a comma-separated list of `translate:PX` (a random shift of up to
PX px of the model input, either way, on each axis), `scale:F` (a random rescale by a factor
in [1 - F, 1 + F]), `crop:S` (a random resized crop keeping a fraction S..1 of the area, as
torchvision's RandomResizedCrop) and `flip` (random horizontal flip); `none` for nothing. The
shift and the rescale act on the model's standard input (resize, centre crop) and fill with
black; the crop replaces the standard resize and centre crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data import ImageItem, discover_images
from ..data._decode import ImageDecodeError, decode_image
from ..errors import ArgumentError, DataError
from ..models import Preprocessing
from ..models._interpolation import torchvision_mode

if TYPE_CHECKING:
    from torchvision import transforms  # imported by the transforms' builders: it takes seconds


@dataclass(frozen=True)
class Augment:
    """A parsed `--augment` spec (see the module docstring)."""

    translate: int = 0
    scale: float = 0.0
    crop: float | None = None
    flip: bool = False

    def __str__(self) -> str:
        parts = []
        if self.crop is not None:
            parts.append(f"crop:{self.crop:g}")
        if self.translate:
            parts.append(f"translate:{self.translate}")
        if self.scale:
            parts.append(f"scale:{self.scale:g}")
        if self.flip:
            parts.append("flip")
        return ",".join(parts) or "none"


def parse_augment(spec: str | None) -> Augment:
    """'translate:8,scale:0.1' -> Augment(translate=8, scale=0.1); None or 'none' -> none."""
    if spec is None or spec.strip() in ("", "none"):
        return Augment()
    values: dict = {}
    for part in spec.split(","):
        name, _, value = part.strip().partition(":")
        try:
            if name == "translate":
                values["translate"] = int(value)
                if values["translate"] < 0:
                    raise ValueError
            elif name == "scale":
                values["scale"] = float(value)
                if not 0.0 <= values["scale"] < 1.0:
                    raise ValueError
            elif name == "crop":
                values["crop"] = float(value)
                if not 0.0 < values["crop"] <= 1.0:
                    raise ValueError
            elif name == "flip" and not value:
                values["flip"] = True
            else:
                raise ArgumentError(
                    f"--augment '{spec}': unknown part '{part}'; use translate:PX, scale:F, "
                    "crop:S, flip or none, joined by commas"
                )
        except ValueError:
            raise ArgumentError(
                f"--augment '{spec}': bad value in '{part}' (translate:PX with PX >= 0, "
                "scale:F with 0 <= F < 1, crop:S with 0 < S <= 1)"
            ) from None
    return Augment(**values)


def eval_transform(prep: Preprocessing) -> transforms.Compose:
    """The model's standard input: shorter side to floor(R / crop_pct), centre crop R."""
    from torchvision import transforms

    interpolation = torchvision_mode(prep.interpolation)
    return transforms.Compose(
        [
            transforms.Resize(int(prep.input_size / prep.crop_pct), interpolation=interpolation),
            transforms.CenterCrop(prep.input_size),
            transforms.ToTensor(),
            transforms.Normalize(prep.mean, prep.std),
        ]
    )


def train_transform(prep: Preprocessing, augment: Augment) -> transforms.Compose:
    from torchvision import transforms

    interpolation = torchvision_mode(prep.interpolation)
    r = prep.input_size
    steps: list = []
    if augment.crop is not None:
        steps.append(
            transforms.RandomResizedCrop(r, scale=(augment.crop, 1.0), interpolation=interpolation)
        )
    else:
        steps += [
            transforms.Resize(int(r / prep.crop_pct), interpolation=interpolation),
            transforms.CenterCrop(r),
        ]
    if augment.translate or augment.scale:
        steps.append(
            transforms.RandomAffine(
                degrees=0,
                translate=(augment.translate / r, augment.translate / r),
                scale=(1.0 - augment.scale, 1.0 + augment.scale),
                interpolation=interpolation,
                fill=0,
            )
        )
    if augment.flip:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(prep.mean, prep.std)]
    return transforms.Compose(steps)


class TrainImages(Dataset):
    """(transformed image, label) per item; None for an image that cannot be decoded (the
    loader drops it, and `usable_items` has already recorded it)."""

    def __init__(self, items: list[ImageItem], transform):
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        item = self.items[i]
        try:
            image, _ = decode_image(item.path)
        except ImageDecodeError:
            return None
        return self.transform(image), item.label


def collate(batch):
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    images, labels = zip(*batch, strict=True)
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def class_folders(data: str, limit: int | None = None) -> tuple[list[ImageItem], list[str]]:
    """An ImageFolder: every image sits in a sub-folder named by its class. Returns the items
    labelled 0..K-1 (class folders in sorted order) and the class names."""
    root = Path(data)
    if not root.is_dir():
        raise DataError(f"'{data}' is not a folder; training needs one sub-folder per class")
    items = discover_images(root, limit=limit)
    top = [Path(i.image_id).parts[0] if len(Path(i.image_id).parts) > 1 else None for i in items]
    if any(t is None for t in top):
        loose = next(i.image_id for i, t in zip(items, top, strict=True) if t is None)
        raise DataError(
            f"'{data}' is not an ImageFolder: '{loose}' is not inside a class folder; put each "
            "image in a sub-folder named by its class (or pass --distill for unlabelled images)"
        )
    classes = sorted(set(top))
    index = {c: i for i, c in enumerate(classes)}
    labelled = [
        ImageItem(i.index, i.image_id, i.path, index[t]) for i, t in zip(items, top, strict=True)
    ]
    return labelled, classes


def usable_items(items: list[ImageItem]) -> tuple[list[ImageItem], list[dict]]:
    """Items whose image decodes, and the others with their reason (recorded, not fatal)."""
    usable, skipped = [], []
    for item in items:
        try:
            decode_image(item.path)
        except ImageDecodeError as exc:
            skipped.append({"image_id": item.image_id, "reason": str(exc)})
            continue
        usable.append(item)
    if not usable:
        raise DataError("every image was unreadable; see the reasons in the log")
    return usable, skipped


def split_heldout(
    items: list[ImageItem], fraction: float, seed: int
) -> tuple[list[ImageItem], list[ImageItem]]:
    """(train, held-out): a seeded `fraction` of each label's images is held out (at least one
    per label that has two or more images; none when fraction is 0)."""
    if fraction <= 0:
        return list(items), []
    rng = np.random.default_rng([seed, 7])
    train, heldout = [], []
    for label in sorted({i.label for i in items}):
        members = [i for i in items if i.label == label]
        order = rng.permutation(len(members))
        n = int(round(len(members) * fraction))
        n = max(n, 1) if len(members) >= 2 else 0
        heldout += [members[j] for j in order[:n]]
        train += [members[j] for j in order[n:]]
    return sorted(train, key=lambda i: i.index), sorted(heldout, key=lambda i: i.index)


def load_inputs(items: list[ImageItem], transform) -> torch.Tensor:
    """The transformed images of `items` in one tensor (held-out analyses; small sets)."""
    images = []
    for item in items:
        image, _ = decode_image(item.path)
        images.append(transform(image))
    return torch.stack(images) if images else torch.zeros(0)
