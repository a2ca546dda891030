"""AuditSetup: everything an audit resolves before any work (model, protocols, images, device)."""

from __future__ import annotations

import math

from ..data import ImageItem, discover_videos
from ..data._dataset import SourceDataset
from ..data._items import find_images
from ..data._video import FrameSelection, VideoDataset
from ..data.annotations._objects import object_items
from ..errors import DataError, ModelSpecError
from ..models import LoadedModel, load_model
from ..protocols import Protocol, build_protocols
from ..protocols._base import options_from_config, protocol_names
from ._bounds import check_work_fits
from ._config import AuditConfig
from ._device import check_device_options, resolve_device
from ._distributed import init_ranks
from ._fingerprint import fingerprint_images, fingerprints_digest
from ._graph import GRAPH_KINDS, ModelGraphs, check_graph_option, graph_problem
from ._measure import check_measure, is_headless, probe_features
from ._onnx import onnx_importable
from ._sequences import check_baseline, check_sequence_protocols


class AuditSetup:
    """Everything resolved before any work: model, protocols, images, device (validated)."""

    def __init__(self, config: AuditConfig, loaded: LoadedModel | None = None):
        config.validate()
        self.config = config
        self.ranks = init_ranks()
        self.device = resolve_device(config.device, self.ranks)
        check_device_options(config, self.device)
        self.loaded = loaded or load_model(
            config.model,
            checkpoint=config.checkpoint,
            random_weights=config.random_weights,
            remedies=config.remedies,
            device=self.device,
        )
        self.loaded.module.to(self.device).eval()
        broken = self.loaded.nonfinite_tensors()
        if broken:
            raise ModelSpecError(
                f"{self.loaded.spec} ({self.loaded.weights}): {len(broken)} weight tensor(s) "
                f"hold NaN or Inf ({', '.join(broken[:3])}); every output would be undefined, "
                "so check the checkpoint"
            )
        settings = config.to_dict()
        self.measure = config.parsed_measure
        check_measure(self.measure, self.loaded)  # a headless model has no class metrics
        self.headless = is_headless(self.loaded)
        self.graph_problem = traced_graph_problem(config, self.loaded, self.device)
        check_graph_option(config.graph, self.graph_problem)
        # The graphs the run may use besides eager (`graph_kinds`, in the probe's order) and
        # their builder; the weights' hash, the key of this process's graph cache, is added
        # by `identity`, which computes it anyway.
        self.graph_kinds = graph_kinds(config.graph, self.graph_problem)
        self.graphs: ModelGraphs | None = None
        if self.graph_kinds:
            self.graphs = ModelGraphs(
                self.loaded.module, self.loaded.preprocessing.input_size, None
            )
        self.feature_dim = probe_features(self.loaded, self.measure, self.device)
        self.protocols: list[Protocol] = build_protocols(
            protocol_names(settings), self.loaded.preprocessing, options_from_config(settings)
        )
        check_work_fits(
            self.protocols,
            self.device,
            batch_size=64 if config.batch_size == "auto" else int(config.batch_size),
            images_held=config.chunk_images,
        )
        self.reads_sequences = check_sequence_protocols(self.protocols, config)
        self.baseline = check_baseline(config, self.protocols)
        if self.reads_sequences:
            self.items: list[ImageItem] = discover_videos(
                config.data, labels=config.labels, limit=config.images
            )
            self.label_report = None
        elif config.annotations is not None:  # one item per annotated object
            self.items = object_items(config.annotations, config.data, limit=config.images)
            self.label_report = None
        else:
            found = find_images(
                config.data, samples=config.samples, labels=config.labels, limit=config.images
            )
            self.items = found.items
            self.label_report = found.labels  # label rows that named no image, for the manifest
        self.n_chunks = math.ceil(len(self.items) / config.chunk_images)
        if self.measure.logits:  # class metrics need classes that fit the labels
            _check_fit(self.loaded, self.items)

    def identity(self) -> dict:
        identity = self.config.identity()
        identity["weights_sha256"] = self.loaded.weights_hash()
        if self.graphs is not None:
            self.graphs.weights = identity["weights_sha256"]
        self.fingerprints = fingerprint_images(self.items, content=self.config.hash_images)
        identity["images_digest"] = fingerprints_digest(self.fingerprints)
        return identity

    def views_per_image(self) -> int:
        return sum(p.n_views for p in self.protocols)

    def dataset(self, items: list[ImageItem]) -> SourceDataset | VideoDataset:
        """What the data workers decode: images, or whole videos / frame folders."""
        prep = self.loaded.preprocessing
        requests = [p.source() for p in self.protocols]
        if self.reads_sequences:
            selection = FrameSelection(**self.config.frame_options())
            return VideoDataset(items, requests, prep.interpolation, prep.crop_pct, selection)
        return SourceDataset(items, requests, prep.interpolation, prep.crop_pct)


def graph_kinds(requested: str, problem: str | None) -> list[str]:
    """The graphs besides eager a run may run, in the order `--batch-size auto` tries them:
    the one asked for, or under `--graph auto` ONNX Runtime's (when it is installed) and the
    frozen one; none where a traced graph cannot apply."""
    if problem is not None or requested == "eager":
        return []
    if requested == "auto":
        return [k for k in GRAPH_KINDS if k != "onnx" or onnx_importable()]
    return [requested]


def traced_graph_problem(config: AuditConfig, loaded: LoadedModel, device) -> str | None:
    """Why `--graph frozen` or `onnx` cannot run this model in this run (None when it can)."""
    measure = config.parsed_measure
    # A traced graph runs without hooks: features taken by one rule it out.
    hooked = measure.features and not (is_headless(loaded) and measure.layer is None)
    return graph_problem(loaded.module, device, config.dtype, compile=config.compile, hooked=hooked)


def _check_fit(loaded: LoadedModel, items: list[ImageItem]) -> None:
    """Labels must name one of the model's classes, and top-5 needs five classes."""
    n = loaded.num_classes
    if n < 5:
        raise ModelSpecError(
            f"{loaded.spec} has {n} classes; the metrics need at least 5 "
            "(top-5 and the top-5 distance)"
        )
    outside = [item for item in items if item.label >= n]
    if outside:
        examples = ", ".join(f"{i.image_id} ({i.label})" for i in outside[:3])
        raise DataError(
            f"{len(outside)} image(s) have a label the model does not have (it has {n} "
            f"classes, 0..{n - 1}): {examples}; check --labels or the class folders"
        )
