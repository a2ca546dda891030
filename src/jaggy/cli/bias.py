"""`jaggy bias ANNOTATIONS`: photographer's bias of a dataset, in the image frame and in a
model's input frame; with --audit, a run's metrics by object size and position."""

from __future__ import annotations

import argparse

from ..data.annotations import FORMATS
from ._common import NO_FIGURES, SEED, output_folder
from ._options import call_kwargs, command, option

OPTIONS = (
    option("annotations", metavar="ANNOTATIONS", help="annotation file or folder"),
    output_folder("jaggy-bias"),
    option(
        "--format",
        choices=FORMATS,
        help="annotation format (default: guessed from the file name or folder contents)",
    ),
    option(
        "--images",
        metavar="DIR",
        help="folder of the images, for formats without image sizes (ImageNet CSV, YOLO); "
        "only their headers are read",
    ),
    option(
        "--model",
        metavar="SPEC",
        help="also give the statistics in this model's input frame (its resize and centre "
        "crop; no weights are loaded)",
    ),
    option(
        "--audit",
        metavar="RUN_DIR",
        help="an audit run folder: its per-image metrics by object size and by distance "
        "from the image centre, and reweighted to a uniform position and size",
    ),
    SEED.but(help="seed of the bootstrap CIs"),
    NO_FIGURES,
)


@command("bias", OPTIONS)
def run(args: argparse.Namespace) -> int:
    """where objects sit and how large they are (photographer's bias)

    Read ANNOTATIONS (COCO JSON, VOC/ImageNet XML file or folder, ImageNet LOC_*_solution.csv,
    YOLO txt folder) and write bias.json, boxes.parquet and figures to --out."""
    from ..bias import run_bias

    result = run_bias(**call_kwargs(args, OPTIONS))
    print(format_bias_summary(result.statistics))
    print(f"\nresults in {result.out}/ ({', '.join(p.name for p in result.files)})")
    return 0


def _fmt(values, digits: int = 3) -> str:
    if values is None:
        return "-"
    if isinstance(values, list):
        return "[" + ", ".join(f"{v:.{digits}f}" for v in values) + "]"
    return f"{values:.{digits}f}"


def format_bias_summary(stats: dict) -> str:
    skipped = {k: v for k, v in stats["skipped"].items() if v}
    lines = [
        f"{stats['n_boxes']} boxes on {stats['n_images']} images "
        f"({stats['format']}; skipped: {skipped or 'none'})",
    ]
    frames = [("image", stats)]
    if stats.get("input_frame"):
        frames.append(("input", stats["input_frame"]))
    for name, frame in frames:
        sizes = frame["size_quantiles"] or {}
        lines.append(
            f"  {name:5s} frame: centre mean {_fmt(frame['center_mean'])} "
            f"std {_fmt(frame['center_std'])}, size mean {_fmt(frame['size_mean'])} "
            f"(median {_fmt(sizes.get('0.5'))}), centre in the middle third "
            f"{_fmt(frame['frac_center_in_middle_third'])}, KL from uniform "
            f"{_fmt(frame['center_kl_uniform'])} nats"
        )
    if stats.get("input_frame"):
        frame = stats["input_frame"]
        lines.append(
            f"  the centre crop cuts {frame['n_cut']} box(es) and leaves out {frame['n_outside']}"
        )
    invariance = stats.get("invariance")
    if invariance:
        lines.append(f"  invariance of {invariance['run']} ({invariance['object']}):")
        for key, metrics in invariance["reweighted"].items():
            entry = metrics.get("p_top1_change")
            if not entry or entry["dataset"]["value"] is None:
                continue
            lines.append(
                f"    {key}: P(top-1 change) {entry['dataset']['value']:.3f} under the "
                f"dataset's positions and sizes, {entry['uniform']['value']:.3f} under uniform "
                f"ones (coverage {entry['uniform_coverage']:.2f})"
            )
    return "\n".join(lines)
