"""The model as jaggy uses it: a module plus the preprocessing it was trained with."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from ._interpolation import INTERPOLATIONS


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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

    def problem(self) -> str | None:
        """What makes these values unusable (None when they are fine)."""
        size = self.input_size
        if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 8192:
            return f"input_size must be a whole number of px from 8 to 8192 (got {size!r})"
        crop = self.crop_pct
        if not _is_number(crop) or not 0 < crop <= 1:
            return f"crop_pct must be a number in (0, 1] (got {crop!r})"
        if not isinstance(self.interpolation, str):
            return f"interpolation must be a name such as 'bilinear' (got {self.interpolation!r})"
        for name in ("mean", "std"):
            values = getattr(self, name)
            if (
                not isinstance(values, tuple | list)
                or len(values) != 3
                or not all(_is_number(v) and math.isfinite(v) for v in values)
            ):
                return f"{name} must be 3 finite numbers, one per RGB channel (got {values!r})"
        if any(v <= 0 for v in self.std):
            return (
                f"std must be positive in every channel (got {tuple(self.std)}); a zero std "
                "divides by zero and makes every input non-finite"
            )
        return None

    @classmethod
    def from_mapping(cls, values: dict, source: str) -> Preprocessing:
        """Preprocessing from a user's dict (`jaggy_preprocessing`); ValueError says what is
        wrong with it."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(map(repr, unknown))}; the keys are "
                f"{', '.join(k for k in known if k != 'source')}"
            )
        prep = cls(**{**values, "source": values.get("source", source)})
        if prep.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {', '.join(INTERPOLATIONS)} "
                f"(got {prep.interpolation!r})"
            )
        problem = prep.problem()
        if problem:
            raise ValueError(problem)
        return cls(**{**prep.to_dict(), "mean": tuple(prep.mean), "std": tuple(prep.std)})

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or 0..1 float images [..., 3, H, W] -> normalised float32."""
        x = images.float()
        if images.dtype == torch.uint8:
            x = x / 255.0
        mean, std = self.stats_like(x)
        return (x - mean) / std

    def stats_like(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`mean` and `std` as [3, 1, 1] tensors on `like`'s device and dtype."""
        mean = torch.tensor(self.mean, device=like.device, dtype=like.dtype).view(3, 1, 1)
        std = torch.tensor(self.std, device=like.device, dtype=like.dtype).view(3, 1, 1)
        return mean, std

    def to_pixels(self, normalised: torch.Tensor) -> torch.Tensor:
        """Normalised inputs [..., 3, H, W] back to pixel values on the 0..1 scale (not
        clamped)."""
        mean, std = self.stats_like(normalised)
        return normalised * std + mean

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

    def nonfinite_tensors(self) -> list[str]:
        """Names of the parameters and buffers holding NaN or Inf (a broken checkpoint).

        On one CPU thread: a few hundred small reductions, each of which on two threads
        waits for the other one (4-5x slower on this project's 2-core machine)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return [
                name
                for name, tensor in self.module.state_dict().items()
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
            ]
        finally:
            torch.set_num_threads(threads)

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
