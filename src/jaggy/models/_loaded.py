"""The model as jaggy uses it: a module plus the preprocessing it was trained with."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes a model input.

    Conventions: `input_size` is the square side R in pixels; `crop_pct` is the fraction of the
    resized shorter side kept by the standard centre crop (resize to floor(R / crop_pct), crop R);
    `mean` and `std` are per-channel on the 0..1 scale; `interpolation` is a PIL filter name.
    `source` says where the values came from (timm, torchvision, default).
    """

    input_size: int = 224
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    source: str = "default"

    def to_dict(self) -> dict:
        return asdict(self)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or 0..1 float images [..., 3, H, W] -> normalised float32."""
        x = images.float()
        if images.dtype == torch.uint8:
            x = x / 255.0
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(3, 1, 1)
        return (x - mean) / std

    def black_value(self) -> tuple[float, float, float]:
        """The normalised value of a black pixel, per channel."""
        return tuple(-m / s for m, s in zip(self.mean, self.std, strict=True))


@dataclass
class LoadedModel:
    """A classifier ready to audit: module (eval mode), its preprocessing and class names."""

    module: nn.Module
    preprocessing: Preprocessing
    class_names: list[str]
    spec: str
    weights: str = "unknown"
    remedies: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def weights_hash(self) -> str:
        """sha256 over every tensor of the state dict, in order (names and bytes)."""
        digest = hashlib.sha256()
        for name, tensor in self.module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
        return digest.hexdigest()

    def describe(self) -> dict:
        return {
            "spec": self.spec,
            "weights": self.weights,
            "weights_sha256": self.weights_hash(),
            "remedies": list(self.remedies),
            "preprocessing": self.preprocessing.to_dict(),
            "num_classes": self.num_classes,
            "parameters": sum(p.numel() for p in self.module.parameters()),
        }
