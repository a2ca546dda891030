"""What an audit run is asked to do; the part of it that fixes the results (its identity)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import ArgumentError
from ..protocols import PATHS

DTYPES = ("float32", "float16", "bfloat16")
DEFAULT_PROTOCOLS = ("crop", "black")


@dataclass
class AuditConfig:
    """Everything `jaggy audit` needs. Sizes and shifts are in pixels of the model input.

    batch_size: views per forward pass, or 'auto' (probe a few sizes on the first images and
        keep the fastest). chunk_images: images per committed chunk (the unit of resume and of
        sharding across ranks). consistency_k: random view pairs per image for `consistency`.
    """

    model: str
    data: str | None = None
    samples: bool = False
    labels: str | None = None
    protocols: list[str] = field(default_factory=lambda: list(DEFAULT_PROTOCOLS))
    path: str = "diagonal"
    steps: int = 10
    sizes: list[int] | None = None
    images: int | None = None
    batch_size: int | str = 32
    device: str = "cpu"
    dtype: str = "float32"
    channels_last: bool = False
    seed: int = 0
    out: str = "jaggy-out"
    checkpoint: str | None = None
    random_weights: bool = False
    remedies: list[str] = field(default_factory=list)
    workers: int | None = None
    chunk_images: int = 32
    consistency_k: int = 10
    fourier_step: float = 0.25

    def validate(self) -> None:
        """Check arguments on their own (before the model or any image is touched)."""
        if self.path not in PATHS:
            raise ArgumentError(f"unknown --path '{self.path}'; choose one of: {', '.join(PATHS)}")
        if self.steps < 2:
            raise ArgumentError(f"--steps must be at least 2 (got {self.steps})")
        if not self.protocols:
            raise ArgumentError("no --protocol given")
        if self.sizes is not None and (not self.sizes or any(s < 1 for s in self.sizes)):
            raise ArgumentError(f"--size must be positive (got {self.sizes})")
        if self.batch_size != "auto" and (
            not isinstance(self.batch_size, int) or self.batch_size < 1
        ):
            raise ArgumentError(
                f"--batch-size must be a positive integer or 'auto' (got {self.batch_size})"
            )
        if self.dtype not in DTYPES:
            raise ArgumentError(f"--dtype must be one of {', '.join(DTYPES)} (got {self.dtype})")
        if self.images is not None and self.images < 1:
            raise ArgumentError(f"--images must be at least 1 (got {self.images})")
        if self.chunk_images < 1:
            raise ArgumentError("--chunk-images must be at least 1")
        if self.consistency_k < 1:
            raise ArgumentError("--consistency-pairs must be at least 1")
        if self.data is None and not self.samples:
            raise ArgumentError("no images given: pass a folder or file list, or --samples")

    def embed_sizes(self, input_size: int) -> list[int]:
        """The embedded sizes asked for; by default 140/224 of the model's input size (the
        study's middle size)."""
        return list(self.sizes) if self.sizes else [round(input_size * 140 / 224)]

    def to_dict(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """The settings that determine the rows: a resumed run must repeat them exactly."""
        ignored = {"out", "workers"}
        return {k: v for k, v in self.to_dict().items() if k not in ignored}
