"""What a protocol is: one source image -> an ordered sequence of views at the model's size.

Conventions (used by every protocol):
- Shifts are in pixels of the model input; `dx` moves content right, `dy` moves it down.
- A view sequence is ordered so that consecutive views are one step (1 px, one size, one
  fraction of a pixel) apart; pair metrics compare view k with view k+1.
- Views are made on the device by tensor operations from one preprocessed source tensor that
  the data workers prepare once per image (`SourceRequest`). No per-view PIL work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..models import Preprocessing


@dataclass(frozen=True)
class SourceRequest:
    """How the data worker prepares the one source image a protocol needs.

    kind:
        'square': centre square crop of the decoded image, resized to `side` x `side`.
        'standard': the model's standard eval input: shorter side resized to
            floor(R / crop_pct), centre crop R (`side` = R).
        'short': the whole image, shorter side resized to `side` (bilinear), not cropped
            (ImageNet-P's generator; the tensor is then not square).
    """

    kind: str
    side: int

    @property
    def key(self) -> str:
        return f"{self.kind}{self.side}"


@dataclass(frozen=True)
class ViewParams:
    """Where a view sits along its path. Unused fields stay at their defaults."""

    dx: float = 0.0
    dy: float = 0.0
    size: int = 0


@dataclass
class ProtocolOptions:
    """The user's protocol options, shared by every protocol of a run.

    path: 'diagonal' | 'horizontal' | 'vertical' | 'grid' (grid: steps x steps, serpentine
        order so that consecutive views stay 1 step apart).
    steps: views per image along the path.
    sizes: embedded image sizes S for the embed protocols and the first size of `scale`.
    """

    path: str = "diagonal"
    steps: int = 10
    sizes: tuple[int, ...] = (140,)
    extra: dict = field(default_factory=dict)


class Protocol:
    """One protocol instance (one name and, for embed protocols, one size).

    Subclasses set `name` and implement `source`, `view_params` and `make_views`.
    """

    name: str = ""
    description: str = ""
    # True for protocols whose source is a sequence of frames (videos, frame folders): the
    # run then reads sequences instead of images, and each has its own number of views.
    reads_sequences: bool = False

    def __init__(self, preprocessing: Preprocessing, options: ProtocolOptions):
        self.preprocessing = preprocessing
        self.options = options
        self.input_size = preprocessing.input_size

    @property
    def key(self) -> str:
        """The name used in outputs (`black@117` for embed protocols)."""
        return self.name

    @property
    def n_views(self) -> int:
        return len(self.view_params())

    def params(self) -> dict:
        """Everything that determines the views, for the manifest."""
        return {
            "name": self.name,
            "key": self.key,
            "path": self.options.path,
            "steps": self.options.steps,
            "input_size": self.input_size,
        }

    def source(self) -> SourceRequest:
        raise NotImplementedError

    def view_params(self) -> list[ViewParams]:
        raise NotImplementedError

    def view_params_for(self, source: torch.Tensor) -> list[ViewParams]:
        """The views of one source; the same for every source except where the number of
        views depends on it (a video's frames)."""
        return self.view_params()

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        """Views `indices` of the sequence, from the normalised source [3, H, W] on the device,
        as a float tensor [len(indices), 3, R, R] on the same device."""
        raise NotImplementedError
