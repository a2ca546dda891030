"""Decoding in DataLoader workers: each item is one image's protocol sources (uint8)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch.utils.data import Dataset

from ..protocols import SourceRequest
from ._decode import ImageDecodeError, decode_sources
from ._items import ImageItem


@dataclass
class DecodedImage:
    """What a worker hands to the engine for one image: sources keyed by SourceRequest.key,
    or `error` (the reason it was skipped). `note` records a conversion (e.g. from CMYK)."""

    item: ImageItem
    sources: dict[str, torch.Tensor] = field(default_factory=dict)
    error: str | None = None
    note: str | None = None


def load_source(
    item: ImageItem, request: SourceRequest, interpolation: str = "bicubic", crop_pct: float = 0.875
) -> torch.Tensor:
    """Decode one image and prepare one source (uint8 [3, side, side]).
    Raises ImageDecodeError for an unusable image."""
    sources, _ = decode_sources(item.path, [request], interpolation, crop_pct)
    return sources[request.key]


@dataclass(eq=False, repr=False)
class SourceDataset(Dataset):
    """Images -> DecodedImage with every source the run's protocols need (each distinct
    request once), prepared with the model's `interpolation` and `crop_pct`."""

    items: list[ImageItem]
    requests: list[SourceRequest]
    interpolation: str
    crop_pct: float

    def __post_init__(self) -> None:
        self.requests = list({r.key: r for r in self.requests}.values())

    def __len__(self) -> int:
        return len(self.items)

    # What a failure of `decode` is called, and the errors that must end the run instead.
    failure = "failed to prepare"
    fatal: ClassVar[tuple[type[Exception], ...]] = ()

    def decode(self, item: ImageItem) -> tuple[dict[str, torch.Tensor], str | None]:
        """Every requested source of one item, and a note on any conversion."""
        return decode_sources(item.path, self.requests, self.interpolation, self.crop_pct, item.box)

    def __getitem__(self, i: int) -> DecodedImage:
        item = self.items[i]
        try:
            sources, note = self.decode(item)
        except ImageDecodeError as exc:
            return DecodedImage(item, error=str(exc))
        except self.fatal:
            raise
        except Exception as exc:  # one bad file never ends a run
            return DecodedImage(item, error=f"{self.failure} ({type(exc).__name__}: {exc})")
        return DecodedImage(item, sources, note=note)
