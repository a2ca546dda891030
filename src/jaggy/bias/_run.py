"""`jaggy bias`: annotations -> bias.json, boxes.parquet and figures (and, with an audit run,
invariance by object size and position)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ..data.annotations import Annotations, read_annotations
from ..data.annotations._table import SKIP_REASONS
from ..models import Preprocessing
from ..results import read_metrics
from ._figures import CHART_METRICS, bias_figure, binned_metric_figure, classes_figure
from ._frames import InputFrame, to_input_frame
from ._invariance import invariance_by_object
from ._outputs import (
    SCHEMA_VERSION,
    WRITTEN_BY,
    dictionary_column,
    prepare_out,
    write_json,
    write_table,
)
from ._statistics import BoxGeometry, frame_statistics, histograms, per_class_statistics


@dataclass
class BiasResult:
    """What `run_bias` wrote: `statistics` is the content of bias.json; `files` every file."""

    out: Path
    statistics: dict
    files: list[Path] = field(default_factory=list)


def image_geometry(annotations: Annotations) -> BoxGeometry:
    """Every kept box in normalised coordinates of its image."""
    a = annotations
    return BoxGeometry.from_corners(
        a.x0, a.y0, a.x1, a.y1, a.image_width[a.box_image], a.image_height[a.box_image]
    )


def summarize(annotations: Annotations, geometry: BoxGeometry) -> dict:
    """One frame's statistics: the whole set, its histograms, and per class."""
    a = annotations
    return {
        **frame_statistics(geometry, a.box_image),
        "histograms": histograms(geometry),
        "per_class": per_class_statistics(geometry, a.box_image, a.box_class, a.class_names),
    }


def input_frame_summary(
    annotations: Annotations, preprocessing: Preprocessing
) -> tuple[InputFrame, BoxGeometry, dict]:
    """The boxes mapped into the model's input window, and their statistics (boxes the crop
    leaves out entirely are counted in `n_outside` and left out of the statistics)."""
    a = annotations
    frame = to_input_frame(
        a.x0,
        a.y0,
        a.x1,
        a.y1,
        a.image_width[a.box_image],
        a.image_height[a.box_image],
        preprocessing,
    )
    r = frame.size
    geometry = BoxGeometry.from_corners(frame.x0, frame.y0, frame.x1, frame.y1, r, r)
    inside = ~frame.outside
    kept = Annotations(
        a.path,
        a.format,
        a.image_ids,
        a.image_width,
        a.image_height,
        a.class_names,
        a.box_image[inside],
        a.box_class[inside],
        frame.x0[inside],
        frame.y0[inside],
        frame.x1[inside],
        frame.y1[inside],
    )
    stats = {
        "input_size": r,
        "preprocessing": preprocessing.to_dict(),
        "n_cut": int(frame.cut.sum()),
        "n_outside": int(frame.outside.sum()),
        **summarize(kept, geometry.take(inside)),
    }
    return frame, geometry, stats


def boxes_table(
    annotations: Annotations,
    geometry: BoxGeometry,
    frame: InputFrame | None = None,
    input_geometry: BoxGeometry | None = None,
) -> pa.Table:
    """boxes.parquet: one row per kept box, in file order.

    Columns: image_id, object_index (k-th kept box of its image, in file order; `image_id#k`
    names the object in `bbox` audit runs), class, image_width, image_height, x0, y0, x1, y1
    (image pixels), cx, cy, size, aspect (normalised, see `jaggy.bias._statistics`); with a
    model, the same in its input window prefixed `input_`, plus input_cut and input_outside.
    """
    a = annotations
    columns = {
        "image_id": dictionary_column(a.box_image, a.image_ids),
        "object_index": pa.array(a.object_indices()),
        "class": dictionary_column(a.box_class, a.class_names),
        "image_width": pa.array(a.image_width[a.box_image]),
        "image_height": pa.array(a.image_height[a.box_image]),
        "x0": pa.array(a.x0),
        "y0": pa.array(a.y0),
        "x1": pa.array(a.x1),
        "y1": pa.array(a.y1),
        "cx": pa.array(geometry.cx),
        "cy": pa.array(geometry.cy),
        "size": pa.array(geometry.size),
        "aspect": pa.array(geometry.aspect),
    }
    if frame is not None and input_geometry is not None:
        columns.update(
            {
                "input_x0": pa.array(frame.x0),
                "input_y0": pa.array(frame.y0),
                "input_x1": pa.array(frame.x1),
                "input_y1": pa.array(frame.y1),
                "input_cx": pa.array(input_geometry.cx),
                "input_cy": pa.array(input_geometry.cy),
                "input_size": pa.array(input_geometry.size),
                "input_aspect": pa.array(input_geometry.aspect),
                "input_cut": pa.array(frame.cut),
                "input_outside": pa.array(frame.outside),
            }
        )
    return pa.table(columns)


def _skipped(annotations: Annotations) -> dict:
    return {reason: int(annotations.skipped.get(reason, 0)) for reason in SKIP_REASONS}


def run_bias(
    annotations: str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str | None = None,
    images: str | os.PathLike | None = None,
    model: str | None = None,
    preprocessing: Preprocessing | None = None,
    audit: str | os.PathLike | None = None,
    figures: bool = True,
    seed: int = 0,
) -> BiasResult:
    """Photographer's-bias statistics of an annotation file, in the image frame and (with
    `model`, or an explicit `preprocessing`) in that model's input frame; with `audit` (an
    audit run folder), that run's metrics by object size and position (see
    `jaggy.bias._invariance`; `seed` seeds its bootstrap CIs).

    Writes bias.json, boxes.parquet and, unless `figures` is False, bias_image.png,
    bias_classes.png (and bias_input.png with a model) into `out`; with `audit` also
    invariance.parquet, invariance_by_size.png and invariance_by_position.png.
    """
    metrics = read_metrics(audit) if audit is not None else None  # before any work
    out = prepare_out(out)
    if model is not None and preprocessing is None:
        from ..models import load_model

        # Only the preprocessing is used: no weights are needed.
        preprocessing = load_model(model, random_weights=True).preprocessing
    read = read_annotations(annotations, format=format, images=images)
    geometry = image_geometry(read)
    statistics = {
        "schema_version": SCHEMA_VERSION,
        "written_by": WRITTEN_BY,
        "annotations": os.path.abspath(annotations),
        "format": read.format,
        "images_folder": None if images is None else os.path.abspath(images),
        "n_images_listed": len(read.image_ids),
        "skipped": _skipped(read),
        "skipped_examples": dict(read.skipped_examples),
        **summarize(read, geometry),
        "input_frame": None,
    }
    frame = input_geometry = None
    if preprocessing is not None:
        frame, input_geometry, input_stats = input_frame_summary(read, preprocessing)
        statistics["input_frame"] = {"model": model, **input_stats}
    joined = None
    if metrics is not None:  # joined before any file is written: a bad join writes nothing
        invariance, joined = invariance_by_object(
            metrics, read, run=os.path.abspath(audit), seed=seed
        )
        statistics["invariance"] = invariance
    files = [write_table(out / "boxes.parquet", boxes_table(read, geometry, frame, input_geometry))]
    if joined is not None:
        files.append(write_table(out / "invariance.parquet", pa.table(joined)))
    if figures:
        files += _figures(read, geometry, statistics, frame, input_geometry, out)
    files.insert(0, write_json(out / "bias.json", statistics))
    return BiasResult(out, statistics, files)


def _figures(read, geometry, statistics, frame, input_geometry, out: Path) -> list[Path]:
    name = Path(read.path).name
    files = [
        bias_figure(
            statistics["histograms"],
            f"Photographer's bias: {name} (image frame)",
            "image",
            out / "bias_image.png",
        )
    ]
    classes = classes_figure(
        geometry,
        read.box_class,
        read.class_names,
        f"Box centres by class: {name}",
        out / "bias_classes.png",
    )
    if classes is not None:
        files.append(classes)
    if frame is not None:
        r = statistics["input_frame"]["input_size"]
        files.append(
            bias_figure(
                statistics["input_frame"]["histograms"],
                f"Photographer's bias: {name} (model input, {r} x {r})",
                "input",
                out / "bias_input.png",
            )
        )
    invariance = statistics.get("invariance")
    if invariance:
        for name, key, label in (
            ("invariance_by_size.png", "by_size", "object size: sqrt(box area / image area)"),
            (
                "invariance_by_position.png",
                "by_position",
                "distance of the object's centre from the image centre (0 centre, 1 corner)",
            ),
        ):
            made = binned_metric_figure(
                invariance[key],
                f"Metrics by {key[3:]} of the object (95% CI)",
                label,
                out / name,
                metrics=CHART_METRICS,
            )
            if made is not None:
                files.append(made)
    return files
