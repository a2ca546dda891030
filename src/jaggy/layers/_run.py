"""`jaggy layers` as a function: load the model, shift each image, write layers.json,
layers.parquet and the figures (`run_layers`, exposed as `jaggy.layers`)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from .._checks import check_out
from ..data import discover_images
from ..data._dataset import load_source
from ..data._decode import ImageDecodeError
from ..engine._bounds import check_work_fits
from ..engine._device import resolve_device
from ..engine._manifest import now_iso, package_versions
from ..errors import ArgumentError, DataError
from ..models import LoadedModel
from ..models._load import as_loaded_model
from ._analysis import LayerAnalysis, LayersReport, shift_protocol
from ._outputs import layers_record, summary_lines, write_layers_outputs
from ._stride import StrideMap

DEFAULT_SHIFTS = 32


@dataclass(frozen=True)
class LayersResult:
    """What `jaggy.layers(...)` measured and wrote.

    out: the output folder; files: every file written there (layers.json, layers.parquet,
    figures); report: the measurements (per image, layer and shift); summary: the content of
    layers.json (mean equivariance error per layer and shift, aliasing energy, ...).
    """

    out: Path
    files: tuple[Path, ...]
    report: LayersReport
    summary: dict

    @property
    def layers_json(self) -> Path:
        return self.out / "layers.json"

    @property
    def layers_parquet(self) -> Path:
        return self.out / "layers.parquet"

    def lines(self) -> list[str]:
        """The console summary `jaggy layers` prints."""
        return summary_lines(self.report)


@dataclass(frozen=True)
class LayerSettings:
    """How `jaggy layers` shifts the images and runs the model; checked before any image is
    read. Shifts are (dx, dy) in pixels of the model input.

    protocol: 'crop' (windows 1 px apart, the study's Crop), 'circular' (torch.roll) or
        'fourier' (band-limited sub-pixel circular shifts of `fourier_step` px).
    shifts: T, the largest shift in steps (views 0..T) along `path`.
    show_layers: layers drawn in the feature-map and error-versus-shift figures.
    batch_size: shifted views per forward pass.
    device: cpu, cuda, cuda:N, mps or auto.
    threads: CPU threads while it runs (default: 1 on at most 2 cores, else torch's).
    checkpoint, random_weights, remedies: as in `jaggy.load_model` (specs only).
    """

    protocol: str = "crop"
    shifts: int = DEFAULT_SHIFTS
    path: str = "diagonal"
    fourier_step: float = 0.25
    show_layers: Sequence[str] | None = None
    batch_size: int = 8
    device: str = "cpu"
    threads: int | None = None
    checkpoint: str | os.PathLike | None = None
    random_weights: bool = False
    remedies: Sequence[str] = ()


@dataclass
class _Prepared:
    loaded: LoadedModel
    analysis: LayerAnalysis
    device: torch.device
    threads: int


def resolve_threads(requested: int | None) -> int:
    """The CPU threads of a layer analysis: 1 on a machine with at most 2 cores, where the many
    small per-layer reductions lose more to thread synchronisation than they gain."""
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ArgumentError(f"--threads must be at least 1 (got {requested})")
        return requested
    return 1 if (os.cpu_count() or 1) <= 2 else torch.get_num_threads()


def _prepare(
    model: str | LoadedModel | nn.Module, settings: LayerSettings | None, options: dict
) -> _Prepared:
    """Everything checked and built before any image is read: `settings` (default
    LayerSettings()) with `options` (its fields) replaced."""
    from ..remedies._spec import validate_remedies

    s = replace(settings or LayerSettings(), **options)
    if isinstance(s.shifts, bool) or not isinstance(s.shifts, int) or s.shifts < 1:
        raise ArgumentError(f"--shifts must be at least 1 (got {s.shifts})")
    if isinstance(s.batch_size, bool) or not isinstance(s.batch_size, int) or s.batch_size < 1:
        raise ArgumentError(f"--batch-size must be at least 1 (got {s.batch_size})")
    validate_remedies(list(s.remedies))
    resolved = resolve_device(s.device)
    n_threads = resolve_threads(s.threads)
    loaded = as_loaded_model(
        model,
        checkpoint=s.checkpoint,
        random_weights=s.random_weights,
        remedies=s.remedies,
        device=resolved,
    )
    shift = shift_protocol(s.protocol, loaded.preprocessing, s.shifts, s.path, s.fourier_step)
    check_work_fits([shift], resolved, batch_size=s.batch_size, argument="--shifts")
    analysis = LayerAnalysis(
        loaded.module,
        shift,
        batch_size=s.batch_size,
        show_layers=s.show_layers,
        model_name=loaded.spec,
    )
    return _Prepared(loaded, analysis, resolved, n_threads)


def stride_table(
    model: str | LoadedModel | nn.Module, settings: LayerSettings | None = None, **options
) -> StrideMap:
    """The stride map `jaggy layers --list-layers` prints, after the same argument checks.
    `options`: fields of `LayerSettings`, over `settings`."""
    return _prepare(model, settings, options).analysis.map


def run_layers(
    model: str | LoadedModel | nn.Module,
    data: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    samples: bool = False,
    labels: str | os.PathLike | None = None,
    images: int | None = None,
    out: str | os.PathLike = "jaggy-layers",
    figures: bool = True,
    progress: bool = True,
    settings: LayerSettings | None = None,
    **options,
) -> LayersResult:
    """Where shift invariance breaks, layer by layer (Azulay & Weiss, JMLR 2019, section 3).

    Each image is shifted by 0..`shifts` steps along `path`; every layer's feature map is
    compared with the unshifted one moved by the same amount (exactly where the shift is a
    multiple of the layer's cumulative stride, by band-limited interpolation otherwise), and
    the aliasing energy of every subsampling layer is measured. Shifts are (dx, dy) in pixels
    of the model input.

    Args:
        model: a model spec (`jaggy:efficientnet_lite0`, `timm:NAME`, ...), a LoadedModel or an
            nn.Module.
        data: a folder of images, a file list, or a list of image paths (see `samples`).
        samples: use the bundled sample photos.
        labels, images: a label file; keep the first `images` images.
        out: the output folder (layers.json, layers.parquet and, with `figures`, PNGs).
        progress: print one line per image to stderr.
        settings, options: how the images are shifted and the model runs: a `LayerSettings`
            and / or its fields (`protocol`, `shifts`, `path`, `fourier_step`, `show_layers`,
            `batch_size`, `device`, `threads`, `checkpoint`, `random_weights`, `remedies`).

    Raises:
        ArgumentError: a bad argument (before any image is read).
        DataError: no image could be read.
    """
    started, clock = now_iso(), time.perf_counter()
    check_out(out, "a folder for the results (e.g. --out jaggy-layers)")
    prepared = _prepare(model, settings, options)
    items = discover_images(data, samples=samples, labels=labels, limit=images)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(prepared.threads)
    try:
        report = _measure(prepared, items, progress)
    finally:
        torch.set_num_threads(threads_before)
    if report.n_images == 0:
        raise DataError(
            f"none of the {len(items)} image(s) could be read (reasons above); "
            "check the files or try --samples"
        )
    extra = {
        "model_info": prepared.loaded.describe(),
        "run": {
            "command": "layers",
            "started": started,
            "finished": now_iso(),
            "elapsed_s": round(time.perf_counter() - clock, 3),
            "device": str(prepared.device),
            "batch_size": prepared.analysis.batch_size,
            "threads": prepared.threads,
            "versions": package_versions(),
        },
    }
    written = write_layers_outputs(report, out, figures=figures, extra=extra)
    return LayersResult(Path(out), tuple(written), report, layers_record(report, extra))


def _measure(prepared: _Prepared, items, progress: bool) -> LayersReport:
    analysis = prepared.analysis
    protocol, prep = analysis.protocol, prepared.loaded.preprocessing
    request = protocol.source()
    for n, item in enumerate(items, start=1):
        tick = time.perf_counter()
        try:
            image = load_source(item, request, prep.interpolation, prep.crop_pct)
        except ImageDecodeError as exc:
            analysis.skip(item.image_id, str(exc))
            print(f"skipped {item.image_id}: {exc}", file=sys.stderr)
            continue
        analysis.update(prep.normalize(image), item.image_id)
        if progress:
            print(
                f"[{n}/{len(items)}] {item.image_id}: {protocol.n_views} views, "
                f"{time.perf_counter() - tick:.1f} s",
                file=sys.stderr,
            )
    return analysis.compute()
