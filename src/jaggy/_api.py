"""The functions a user calls: `jaggy.audit`, `jaggy.layers`, `jaggy.compare`, `jaggy.report`,
`jaggy.bias` and `jaggy.train` (`jaggy.check` is `jaggy._gate.check`). Each checks its
arguments before any work, returns a typed result, and is what the matching `jaggy`
subcommand runs; each imports what it runs when it is called.

Models are a spec string (`jaggy:efficientnet_lite0`, `timm:NAME`, `tv:NAME`, `py:mod:factory`),
a `LoadedModel` or a plain `torch.nn.Module` (its own preprocessing, or the recorded default).
Data is a folder of images, a text file listing image paths, a list of image paths, or
`samples=True` for the bundled sample photos.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ArgumentError

# Each function imports what it runs, so that `import jaggy` stays quick (see `jaggy.__init__`).
if TYPE_CHECKING:
    from torch import nn

    from .bias import BiasResult
    from .compare._compare import CompareResult
    from .engine import AuditConfig, AuditResult
    from .layers._run import LayersResult
    from .models import LoadedModel
    from .train import DataTrainResult, TrainResult

    Model = str | LoadedModel | nn.Module
    Data = str | os.PathLike | Sequence[str | os.PathLike] | None

__all__ = [
    "ReportResult",
    "audit",
    "bias",
    "compare",
    "layers",
    "report",
    "train",
]

# AuditConfig fields that `audit(...)` takes as its own arguments, not as **options.
_OWN = {"model", "data", "samples", "protocols", "out"}


def audit_options() -> list[str]:
    """The keyword options `jaggy.audit(...)` accepts (every AuditConfig setting)."""
    from .engine import AuditConfig

    return [f.name for f in dataclasses.fields(AuditConfig) if f.name not in _OWN]


def audit(
    model: Model,
    data: Data = None,
    *,
    protocols: Sequence[str] | str | None = None,
    out: str | os.PathLike = "jaggy-out",
    samples: bool = False,
    resume: bool = False,
    progress: bool = True,
    **options,
) -> AuditResult:
    """Measure how often `model` changes its answer under 1-pixel shifts (`jaggy audit`).

    Writes predictions.parquet, metrics.parquet, summary.json and manifest.json into `out` (a folder owned by
    this run; `resume=True` continues an interrupted one with the same arguments).

    Args:
        model: a model spec, a LoadedModel or an nn.Module.
        data: a folder of images, a file list, or a list of image paths.
        protocols: protocol names (default: crop and black); see
            `jaggy.protocols.list_protocols()`.
        out: the output folder.
        samples: (also) use the bundled sample photos.
        resume: continue the run in `out`.
        progress: show a progress bar on stderr.
        **options: any other setting of `jaggy audit`: `steps`, `sizes` (embedded sizes in px),
            `path`, `images`, `labels`, `batch_size`, `device`, `dtype`, `seed`, `remedies`,
            `checkpoint`, `random_weights`, ... (`jaggy._api.audit_options()` lists them);
            `measure` ('logits', 'features', 'features:LAYER' or 'logits,features': the
            representation change of any backbone, also one without a head),
            `feature_threshold` (τ, a cosine distance) and `save_features` (features.npy).

    Returns:
        AuditResult: `out`, `summary` (a `jaggy.results.Summary`: per protocol key, each
        metric's value and 95% CI), `manifest` (a `jaggy.results.Manifest`), and the paths of
        the files written (predictions, metrics.parquet, summary.json, manifest.json).

    Example:
        >>> result = jaggy.audit("jaggy:efficientnet_lite0", samples=True,
        ...                      protocols=["black"], sizes=[140])  # doctest: +SKIP
        >>> result.summary.protocols["black@140"].value("p_top1_change")  # doctest: +SKIP
        >>> encoder = timm.create_model("resnet50", num_classes=0)  # doctest: +SKIP
        >>> jaggy.audit(encoder, samples=True, protocols=["neighbours"],
        ...             measure="features").summary.protocols["neighbours"].value(
        ...             "fooling_rate")  # doctest: +SKIP
    """
    from .engine import run_audit

    config, loaded = _audit_config(model, data, protocols, out, samples, options)
    return run_audit(config, resume=resume, progress=progress, loaded=loaded)


def _audit_config(
    model: Model,
    data: Data,
    protocols: Sequence[str] | str | None,
    out: str | os.PathLike,
    samples: bool,
    options: dict,
) -> tuple[AuditConfig, LoadedModel | None]:
    from .engine import AuditConfig
    from .models._load import as_loaded_model

    unknown = sorted(set(options) - set(audit_options()))
    if unknown:
        raise ArgumentError(
            f"audit: unknown option(s) {', '.join(unknown)}; choose from "
            f"{', '.join(audit_options())}"
        )
    loaded = None
    if not isinstance(model, str):
        spec_only = {k: options.get(k) for k in ("checkpoint", "random_weights", "remedies")}
        loaded = as_loaded_model(model, **{k: v for k, v in spec_only.items() if v})
        options = {k: v for k, v in options.items() if k not in spec_only}
    if isinstance(protocols, str):
        protocols = [protocols]
    settings = dict(options)
    if protocols is not None:
        settings["protocols"] = list(protocols)
    if isinstance(settings.get("worst_case"), str):
        settings["worst_case"] = [settings["worst_case"]]
    if protocols is None and settings.get("worst_case"):
        settings["protocols"] = []  # the worst-case sets alone, unless protocols are named
    for key in ("sizes", "remedies"):
        if isinstance(settings.get(key), (int, str)):
            settings[key] = [settings[key]]
    if settings.get("labels") is not None:
        settings["labels"] = os.path.abspath(settings["labels"])
    config = AuditConfig(
        model=model if isinstance(model, str) else loaded.spec,
        data=_absolute_data(data),
        samples=samples,
        out=str(out),
        **settings,
    )
    return config, loaded


def _absolute_data(data: Data) -> str | list[str] | None:
    """Paths are recorded absolute: the report finds the images from anywhere, and `./imgs`
    and `imgs` resume the same run."""
    if data is None:
        return None
    if isinstance(data, (str, os.PathLike)):
        return os.path.abspath(data)
    if isinstance(data, Sequence) and data:
        if not all(isinstance(p, (str, os.PathLike)) for p in data):
            raise ArgumentError("data: a list of images holds file paths (str or Path)")
        return [os.path.abspath(p) for p in data]
    raise ArgumentError(
        f"data: give a folder, a file list or a non-empty list of image paths "
        f"(got {type(data).__name__}); or samples=True"
    )


def layers(
    model: Model,
    data: Data = None,
    *,
    out: str | os.PathLike = "jaggy-layers",
    **options,
) -> LayersResult:
    """Where shift invariance breaks, layer by layer (`jaggy layers`); writes layers.json,
    layers.parquet and figures into `out`. Options: see `jaggy.layers._run.run_layers`
    (`samples`, `protocol`, `shifts`, `path`, `show_layers`, `batch_size`, `device`, ...)."""
    from .layers._run import run_layers

    return run_layers(model, _absolute_data(data), out=out, **options)


def bias(
    annotations: str | os.PathLike, out: str | os.PathLike = "jaggy-bias", **options
) -> BiasResult:
    """Photographer's bias of an annotation file (`jaggy bias`): bias.json, boxes.parquet and
    figures in `out`, in the image frame and, with `model` (a spec), in its input frame.

    Args:
        annotations: COCO JSON, VOC / ImageNet XML (file or folder), ImageNet
            LOC_*_solution.csv, or a YOLO label folder.
        **options: as in `jaggy.bias._run.run_bias`:
            format: 'coco', 'voc', 'imagenet-csv' or 'yolo' (guessed when None).
            images: the images' folder, for formats without image sizes (ImageNet CSV, YOLO).
            model: whose resize and centre crop define the input frame (no weights are
                loaded).
            audit: an audit run folder whose per-image metrics are joined with the boxes:
                every metric by object size and position, and reweighted to uniform positions
                and sizes.
            figures: write the PNG figures (default True).
            seed: seed of the bootstrap CIs (default 0).
    """
    from .bias import run_bias

    return run_bias(annotations, out, **options)


def compare(
    model: str,
    data: Data = None,
    *,
    variants: Iterable[str | Sequence[str]],
    protocols: Sequence[str] | str | None = None,
    out: str | os.PathLike = "jaggy-compare",
    samples: bool = False,
    resume: bool = False,
    progress: bool = True,
    **options,
) -> CompareResult:
    """A model against its remedied variants on the same images and views (`jaggy compare`).

    Args:
        model: a model spec (each variant is loaded from it, then remedied).
        variants: one entry per variant: a remedy spec (`"blurpool:4"`), a chain joined by '+'
            (`"aps+circular"`) or a list of specs.
        protocols, out, samples, resume, progress, **options: as in `jaggy.audit`.

    Returns:
        CompareResult: `out` (compare.json and one audit folder per variant under
        `variants/`) and `rows` (per variant: remedies, params, forward ms per image and its
        ratio to the base model, and every protocol's metrics).
    """
    from .compare._compare import compare_variants, parse_variant

    if not isinstance(model, str):
        raise ArgumentError(
            "compare: give the model as a spec string; each variant is loaded from it"
        )
    if isinstance(variants, str):
        variants = [variants]
    parsed = [parse_variant(v if isinstance(v, str) else "+".join(v)) for v in list(variants or [])]
    if not parsed:
        raise ArgumentError("compare needs at least one variant (e.g. variants=['blurpool:4'])")
    config, _ = _audit_config(model, data, protocols, out, samples, options)
    return compare_variants(config, parsed, resume=resume, progress=progress)


@dataclass(frozen=True)
class ReportResult:
    """The HTML report written by `jaggy.report(...)` and the run folders it shows."""

    path: Path
    runs: tuple[Path, ...]


def report(
    runs: str | os.PathLike | Iterable[str | os.PathLike | AuditResult],
    out: str | os.PathLike = "report.html",
    *,
    wall_images: int | None = None,
    curve_images: int | None = None,
    thumbnails: int | None = None,
) -> ReportResult:
    """One self-contained HTML report of one or more result folders (`jaggy report`).

    Args:
        runs: result folders (an audit's, a demo's, a layers or a compare folder), or results
            returned by `jaggy.audit` / `jaggy.layers` / `jaggy.compare`.
        out: the HTML file to write.
        wall_images, curve_images, thumbnails: caps on what is drawn (None: the default of
            `jaggy.report.ReportLimits`).
    """
    from .report import ReportLimits, write_report

    if isinstance(runs, (str, os.PathLike)) or hasattr(runs, "out"):
        runs = [runs]
    folders = tuple(Path(getattr(r, "out", r)) for r in runs)
    caps = {"wall_images": wall_images, "curve_images": curve_images, "thumbnails": thumbnails}
    limits = ReportLimits(**{name: cap for name, cap in caps.items() if cap is not None})
    return ReportResult(write_report(list(folders), out, limits), folders)


def train(
    model: str | None = None,
    data: str | os.PathLike | None = None,
    *,
    experiment: str | None = None,
    out: str | os.PathLike = "jaggy-train",
    progress: bool = True,
    **options,
) -> TrainResult | DataTrainResult:
    """Learning invariance from data (`jaggy train`).

    `train(experiment="canvas", out=...)` runs the built-in canvas experiment (options: the
    fields of `jaggy.train.CanvasConfig`, e.g. `variants=("baseline", "augment")`, `epochs`);
    it returns a TrainResult whose `record` is train.json. `train(spec, folder, ...)` trains
    the model on an ImageFolder (options: the fields of `jaggy.train.TrainConfig`, e.g.
    `augment="translate:8"`, `remedies=["blurpool:4"]`, `distill=True`, `epochs`) and returns
    a DataTrainResult (`checkpoint`, `history`, `record`).
    """
    from .train import CanvasConfig, TrainConfig, run_canvas_experiment, train_on_data

    if experiment is not None:
        if experiment != "canvas":
            raise ArgumentError(f"unknown experiment '{experiment}'; the built-in one is 'canvas'")
        if model is not None or data is not None:
            raise ArgumentError("the canvas experiment brings its own model and data")
        _check_options(options, CanvasConfig, {"out"})
        return run_canvas_experiment(CanvasConfig(out=str(out), **options), progress=progress)
    if not isinstance(model, str) or data is None:
        raise ArgumentError("train: give a model spec and an ImageFolder, or experiment='canvas'")
    _check_options(options, TrainConfig, {"model", "data", "out"})
    config = TrainConfig(model=model, data=str(data), out=str(out), **options)
    return train_on_data(config, progress=progress)


def _check_options(options: dict, config_class, own: set[str]) -> None:
    known = {f.name for f in dataclasses.fields(config_class)} - own
    unknown = sorted(set(options) - known)
    if unknown:
        raise ArgumentError(
            f"unknown option(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}"
        )
