"""What an audit run is asked to do; the part of it that fixes the results (its identity)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .._checks import check_out, check_seed
from ..errors import ArgumentError
from ..metrics._representation import DEFAULT_FEATURE_THRESHOLD, check_feature_threshold
from ..protocols import PATHS
from ..protocols._paths import check_path_length
from ..protocols.worst import check_worst_kinds

DTYPES = ("float32", "float16", "bfloat16")
MEMORY_FORMATS = ("auto", "contiguous", "channels_last")
GRAPHS = ("auto", "eager", "frozen", "onnx")
DEFAULT_PROTOCOLS = ("crop", "black")


@dataclass
class AuditConfig:
    """Everything `jaggy audit` needs. Sizes and shifts are in pixels of the model input.

    batch_size: views per forward pass, or 'auto' (probe a few batch sizes and memory formats on
        the first images' views and keep the fastest; the choice and the probe timings are
        recorded in run.json and manifest.json).
    memory_format: 'contiguous', 'channels_last', or 'auto' (probed with an automatic batch
        size, contiguous otherwise). `channels_last=True` is shorthand for 'channels_last'.
    graph: how the model runs: 'eager', 'frozen' (a frozen, inference-optimised TorchScript
        graph of a copy of the model, checked against eager on real views; see
        `jaggy.engine._graph`), 'onnx' (an ONNX Runtime session of an export of a copy,
        checked the same way; `jaggy.engine._onnx`), or 'auto' (the graphs are among the
        configurations `batch_size='auto'` tries, chosen when they pay for their build;
        eager with a fixed batch size).
    compile: run the model through `torch.compile` (probing stays in eager mode).
    threads: CPU intra-op threads (None: torch's default, i.e. OMP_NUM_THREADS or the cores).
        The count in use is recorded when a run starts and reused by every rank and resumed
        session on the CPU, because float sums depend on how the work is split.
    chunk_images: images per committed chunk (the unit of resume and of sharding across ranks).
    consistency_k: K, the random view pairs per image of `zhang` and `aps_roll` (their
        `consistency`) and of `path_consistency`.
    difficulty: ImageNet-P's d: `flip_probability` and `top5_distance` compare views d apart.
    pmk: k of `pmk_accuracy` (a view counts when it and every view within k are right).
    overwrite: start afresh in an `out` that holds another run or files jaggy did not write
        (only jaggy's own chunks and outputs are deleted there).
    hash_images: fingerprint each image by a sha256 of its bytes as well as its size and
        modification time (part of the identity that a resume checks).
    frame_stride, max_frames, start: which frames of a video the `video` protocol reads
        (frames start, start + stride, ...; at most max_frames of them; frame numbers count
        decoded frames from 0).
    baseline: a finished audit folder whose ImageNet-P-style flip probability and top-5
        distance normalise this run's (flip rates, mFR / mT5D).
    annotations: an annotation file or folder (`jaggy.data.annotations`); each kept box
        becomes one item (`image#k`) of the `bbox` protocol, its image found in `data`.
    bbox_margin: the margin of the `bbox` crop, as a fraction of the object's larger side.
    worst_case: worst-case sets (`circular`, `crop`, `fourier`, `grid`, `randomK`; see
        `jaggy.protocols.worst`), each run as protocol key `worst@KIND` after `protocols`.
    exhaustive: compute every view of the worst-case sets instead of stopping an image at
        its first failing batch (same robust answers; every view's row is kept).
    measure: what each view is measured by: 'logits' (class metrics), 'features' (the pooled
        penultimate features), 'features:LAYER' (a named layer's pooled output), or both
        joined by a comma ('logits,features', 'both'); see `jaggy.engine._measure`.
    feature_threshold: τ, the cosine distance of features beyond which a pair of views
        counts as a representation change (`representation_change_rate`, `fooling_rate`).
    save_features: also write every view's feature vector to features.npy (needs features
        in `measure`).
    """

    model: str
    data: str | list[str] | None = None  # a folder, a file list, or a list of image paths
    samples: bool = False
    labels: str | None = None
    protocols: list[str] = field(default_factory=lambda: list(DEFAULT_PROTOCOLS))
    path: str = "diagonal"
    steps: int = 10
    sizes: list[int] | None = None
    images: int | None = None
    batch_size: int | str = "auto"
    device: str = "cpu"
    dtype: str = "float32"
    channels_last: bool = False
    memory_format: str = "auto"
    graph: str = "auto"
    compile: bool = False
    threads: int | None = None
    seed: int = 0
    out: str = "jaggy-out"
    checkpoint: str | None = None
    random_weights: bool = False
    remedies: list[str] = field(default_factory=list)
    workers: int | None = None
    chunk_images: int = 32
    consistency_k: int = 10
    fourier_step: float = 0.25
    overwrite: bool = False
    hash_images: bool = False
    difficulty: int = 1
    pmk: int = 10
    frame_stride: int = 1
    max_frames: int | None = None
    start: int = 0
    baseline: str | None = None
    annotations: str | None = None
    bbox_margin: float = 0.1
    worst_case: list[str] = field(default_factory=list)
    exhaustive: bool = False
    measure: str = "logits"
    feature_threshold: float = DEFAULT_FEATURE_THRESHOLD
    save_features: bool = False

    def validate(self) -> None:
        """Check arguments on their own (before the model or any image is touched)."""
        if self.path not in PATHS:
            raise ArgumentError(f"unknown --path '{self.path}'; choose one of: {', '.join(PATHS)}")
        if self.steps < 2:
            raise ArgumentError(f"--steps must be at least 2 (got {self.steps})")
        check_worst_kinds(self.worst_case)
        if not self.protocols and not self.worst_case:
            raise ArgumentError("no --protocol or --worst-case given")
        if self.exhaustive and not self.worst_case and "worst" not in self.protocols:
            raise ArgumentError("--exhaustive applies to the worst-case sets: add --worst-case")
        if self.sizes is not None and (not self.sizes or any(s < 1 for s in self.sizes)):
            raise ArgumentError(f"--size must be positive (got {self.sizes})")
        if self.batch_size != "auto" and (
            not isinstance(self.batch_size, int)
            or isinstance(self.batch_size, bool)
            or self.batch_size < 1
        ):
            raise ArgumentError(
                f"--batch-size must be a positive integer or 'auto' (got {self.batch_size})"
            )
        if self.dtype not in DTYPES:
            raise ArgumentError(f"--dtype must be one of {', '.join(DTYPES)} (got {self.dtype})")
        if self.memory_format not in MEMORY_FORMATS:
            raise ArgumentError(
                f"--memory-format must be one of {', '.join(MEMORY_FORMATS)} "
                f"(got {self.memory_format})"
            )
        if self.graph not in GRAPHS:
            raise ArgumentError(f"--graph must be one of {', '.join(GRAPHS)} (got {self.graph})")
        if self.graph in ("frozen", "onnx") and self.compile:
            raise ArgumentError(
                f"--graph {self.graph} cannot apply: --compile already compiles the model (one "
                "graph compiler at a time); drop one of them"
            )
        if self.channels_last and self.memory_format == "contiguous":
            raise ArgumentError("--channels-last contradicts --memory-format contiguous")
        if self.threads is not None and self.threads < 1:
            raise ArgumentError(f"--threads must be at least 1 (got {self.threads})")
        if self.workers is not None and self.workers < 0:
            raise ArgumentError(f"--workers must be 0 or more (got {self.workers})")
        if self.images is not None and self.images < 1:
            raise ArgumentError(f"--images must be at least 1 (got {self.images})")
        if self.chunk_images < 1:
            raise ArgumentError("--chunk-images must be at least 1")
        if self.consistency_k < 1:
            raise ArgumentError("--consistency-pairs must be at least 1")
        if self.data is None and not self.samples:
            raise ArgumentError("no images given: pass a folder or file list, or --samples")
        if self.difficulty < 1:
            raise ArgumentError(f"--difficulty must be at least 1 (got {self.difficulty})")
        if self.pmk < 0:
            raise ArgumentError(f"--pmk must be 0 or more (got {self.pmk})")
        if self.frame_stride < 1:
            raise ArgumentError(f"--frame-stride must be at least 1 (got {self.frame_stride})")
        if self.max_frames is not None and self.max_frames < 2:
            raise ArgumentError(
                f"--max-frames must be at least 2 (got {self.max_frames}): metrics compare frames"
            )
        if self.start < 0:
            raise ArgumentError(f"--start must be 0 or more (got {self.start})")
        check_seed(self.seed)
        check_out(self.out, "a folder for the results (e.g. --out jaggy-out)")
        check_path_length(self.path, self.steps)
        self._validate_annotations()
        self._validate_measure()

    def frame_options(self) -> dict:
        """Which frames of each video are read (see jaggy.data.FrameSelection)."""
        return {"start": self.start, "stride": self.frame_stride, "max_frames": self.max_frames}

    def _validate_annotations(self) -> None:
        """--annotations and the bbox protocol go together (one sequence per object)."""
        boxes = "bbox" in self.protocols
        if self.annotations is None:
            if boxes:
                raise ArgumentError(
                    "the bbox protocol crops annotated objects: pass --annotations FILE and "
                    "DATA, the folder of the annotated images"
                )
            return
        others = [p for p in self.protocols if p != "bbox"]
        if others:
            raise ArgumentError(
                f"--annotations makes one sequence per object for the bbox protocol; run "
                f"{', '.join(others)} on the images in a separate audit"
            )
        if self.samples or self.data is None or isinstance(self.data, list):
            raise ArgumentError("--annotations needs DATA, the folder of the annotated images")
        if self.labels is not None:
            raise ArgumentError(
                "--labels does not apply with --annotations: each object's class comes from "
                "the annotations (ImageNet synsets become labels)"
            )
        if not 0 <= self.bbox_margin <= 2:
            raise ArgumentError(f"--bbox-margin must be within 0..2 (got {self.bbox_margin})")

    def _validate_measure(self) -> None:
        from ._measure import Measure

        measure = Measure.parse(self.measure)
        try:
            check_feature_threshold(self.feature_threshold)
        except ValueError as exc:
            raise ArgumentError(f"--feature-threshold: {exc}") from exc
        if self.worst_case and not measure.logits:
            raise ArgumentError(
                "--worst-case judges the class answer at every view, so it needs logits: "
                "use --measure logits,features to have the representation beside it"
            )
        if self.save_features and not measure.features:
            raise ArgumentError(
                "--save-features writes the feature vectors of --measure features[:LAYER]; "
                "add features to --measure (e.g. --measure logits,features)"
            )

    @property
    def parsed_measure(self):
        """`measure` as a `Measure` (validated by `validate`)."""
        from ._measure import Measure

        return Measure.parse(self.measure)

    @property
    def requested_memory_format(self) -> str:
        """'auto', 'contiguous' or 'channels_last', with the `channels_last` shorthand applied."""
        return "channels_last" if self.channels_last else self.memory_format

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def identity_defaults() -> dict:
        """Each identity setting's default value: a run recorded by an earlier version that
        lacks a setting added since ran with that setting's default behaviour."""
        from dataclasses import MISSING, fields

        return {f.name: f.default for f in fields(AuditConfig) if f.default is not MISSING}

    def identity(self) -> dict:
        """The settings that determine the rows: a resumed run must repeat them exactly.
        (`out` and `workers` do not change any number.)"""
        ignored = {"out", "workers", "channels_last", "memory_format", "overwrite"}
        identity = {k: v for k, v in self.to_dict().items() if k not in ignored}
        identity["memory_format"] = self.requested_memory_format
        return identity
