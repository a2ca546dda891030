"""What a protocol is: one source image -> an ordered sequence of views at the model's size.

Conventions (used by every protocol):
- Shifts are in pixels of the model input; `dx` moves content right, `dy` moves it down.
- A view sequence is ordered so that consecutive views are one step (1 px, one size, one
  fraction of a pixel) apart; pair metrics compare view k with view k+1.
- Views are made on the device by tensor operations from one preprocessed source tensor that
  the data workers prepare once per image (`SourceRequest`). No per-view PIL work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from ..models import Preprocessing


@dataclass(frozen=True)
class SourceRequest:
    """How the data worker prepares the one source image a protocol needs.

    kind:
        'square': centre square crop of the decoded image, resized to `side` x `side`.
        'standard': the model's standard eval input as timm and torchvision make it: shorter
            side resized to floor(R / crop_pct) (the longer side to floor(that * long /
            short)), centre crop R (`side` = R) with torchvision's rounding of the offsets.
        'short_side': as 'standard' with nothing cut away: shorter side resized to `side`,
            centre crop `side` x `side` (Zhang's `Resize(256)`, `CenterCrop(256)`).
        'short': the whole image, shorter side resized to `side` (bilinear), not cropped
            (ImageNet-P's generator; the tensor is then not square).
        'study': the whole image squashed to `side` x `side` with PIL's bilinear filter, or
            its 3:4 / 4:3 centre crop when the aspect ratio is more extreme (what the study's
            `RandomResizedCrop(side, scale=(1, 1))` does; see `protocols/study.py`).
    full_decode: decode JPEGs at full resolution, as the peers' loaders did; otherwise a large
        JPEG is decoded at the smallest 1/2^k scale that is at least 2 x `side` (a view then
        still depends only on the image and this request, never on the rest of the run).
        'box': a square around the item's annotated object, `margin` of its larger side
            added on each side, resized to `side` x `side` (`jaggy.data.box_source`).
    """

    kind: str
    side: int
    full_decode: bool = False
    margin: float = 0.0

    @property
    def key(self) -> str:
        margin = f"m{self.margin:g}" if self.kind == "box" else ""
        return f"{self.kind}{self.side}{margin}" + ("full" if self.full_decode else "")

    @property
    def draft_side(self) -> int | None:
        """The side a JPEG may be draft-decoded down to (None: full resolution)."""
        return None if self.full_decode else 2 * self.side


@dataclass(frozen=True)
class ViewParams:
    """Where a view sits along its path. Unused fields stay at their defaults.
    `angle`: rotation in degrees (worst-case sets; positive turns the content
    counter-clockwise on the screen)."""

    dx: float = 0.0
    dy: float = 0.0
    size: int = 0
    angle: float = 0.0


@dataclass
class ProtocolOptions:
    """The user's protocol options, shared by every protocol of a run.

    path: 'diagonal' | 'horizontal' | 'vertical' | 'grid' (grid: steps x steps, serpentine
        order so that consecutive views stay 1 step apart).
    steps: views per image along the path.
    sizes: embedded image sizes S for the embed protocols and the first size of `scale`;
        None when the user chose none (see `embed_sizes`; `study_black` then takes the study's
        three sizes).
    seed: seeds the random view pairs of `zhang` and `aps_roll`.
    pairs: K, the random view pairs per image of `zhang` and `aps_roll`.
    """

    path: str = "diagonal"
    steps: int = 10
    sizes: tuple[int, ...] | None = None
    extra: dict = field(default_factory=dict)
    seed: int = 0
    pairs: int = 10

    def embed_sizes(self, input_size: int) -> tuple[int, ...]:
        """The sizes asked for; by default 140/224 of the input size R (the study's middle
        size)."""
        return tuple(self.sizes) if self.sizes else (round(input_size * 140 / 224),)

    def frame_selection(self) -> dict:
        """Which frames of each video are read: the keywords of `jaggy.data.FrameSelection`
        (`start`, `stride`, `max_frames`)."""
        extra = self.extra
        return {
            "start": int(extra.get("start", 0)),
            "stride": int(extra.get("stride", 1)),
            "max_frames": extra.get("max_frames"),
        }


def options_from_config(config: Mapping) -> ProtocolOptions:
    """The protocol options of an audit from its settings (an `AuditConfig.to_dict()` or a
    manifest's `config`), so that the engine and everything that re-creates a run's views
    build the same protocols."""
    sizes = config.get("sizes")
    return ProtocolOptions(
        path=config.get("path") or "diagonal",
        steps=int(config.get("steps") or 10),
        sizes=tuple(int(s) for s in sizes) if sizes else None,
        extra={
            "fourier_step": float(config.get("fourier_step", 0.25)),
            "bbox_margin": float(config.get("bbox_margin", 0.1)),
            # which frames of each video are read (older runs have none: every frame)
            "start": int(config.get("start") or 0),
            "stride": int(config.get("frame_stride") or 1),
            "max_frames": config.get("max_frames"),
            # the worst-case sets (`--worst-case`) and whether every view is kept
            "worst_case": tuple(config.get("worst_case") or ()),
            "exhaustive": bool(config.get("exhaustive", False)),
        },
        seed=int(config.get("seed") or 0),
        pairs=int(config.get("consistency_k") or 10),
    )


def protocol_names(config: Mapping) -> list[str]:
    """The protocols an audit's settings build, in order: `protocols`, then the worst-case
    sets (`worst`, one instance per `--worst-case` kind) when any is asked for."""
    names = list(config.get("protocols") or [])
    if config.get("worst_case") and "worst" not in names:
        names.append("worst")
    return names


class Protocol:
    """One protocol instance (one name and, for embed protocols, one size).

    Subclasses set `name` and implement `source`, `view_params` and `make_views`.
    """

    name: str = ""
    description: str = ""
    # True for protocols whose source is a sequence of frames (videos, frame folders): the
    # run then reads sequences instead of images, and each has its own number of views.
    reads_sequences: bool = False
    # 'consecutive': pair metrics compare view k with view k+1; 'disjoint': views come in
    # independent pairs (2i, 2i+1), and only those are compared.
    pairing: str = "consecutive"
    # True for worst-case sets (`protocols/worst.py`): view 0 is the untransformed input, and
    # the engine may stop an image at its first failing view (unless `exhaustive`).
    worst_case: bool = False
    exhaustive: bool = True

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

    def for_image(self, image_id: str) -> Protocol:
        """The protocol as it applies to one image. Protocols whose views are drawn at random
        per image return a copy seeded by (`options.seed`, `image_id`), so a view depends only
        on the image, never on its position in the run; the others return themselves."""
        return self

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


class SizedProtocol(Protocol):
    """A protocol made once per image size S (one instance per value of `sizes_for`): its key
    is `name@S` and S is among its params."""

    sized = True

    def __init__(self, preprocessing: Preprocessing, options: ProtocolOptions, size: int):
        super().__init__(preprocessing, options)
        self.size = int(size)

    @classmethod
    def sizes_for(cls, preprocessing: Preprocessing, options: ProtocolOptions) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def key(self) -> str:
        return f"{self.name}@{self.size}"

    def params(self) -> dict:
        return {**super().params(), "size": self.size}
