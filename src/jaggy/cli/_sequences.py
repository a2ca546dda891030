"""Arguments of the sequence metrics and inputs: ImageNet-P's difficulty, pm-k, videos."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._common import absolute
from ._options import Group, option

SEQUENCE_OPTIONS = Group(
    "perturbation sequences and videos",
    (
        option(
            "--difficulty",
            type=int,
            default=1,
            metavar="D",
            help="flip_probability and top5_distance compare views D apart, as ImageNet-P's "
            "test.py does (default 1)",
        ),
        option(
            "--pmk",
            type=int,
            default=10,
            metavar="K",
            help="pmk_accuracy: a view counts as right only when it and every view within K of "
            "it are right (Shankar et al., ICCV 2021; default 10)",
        ),
        option(
            "--frame-stride",
            type=int,
            default=1,
            metavar="N",
            help="--protocol video: read every N-th frame (default 1)",
        ),
        option(
            "--max-frames",
            type=int,
            metavar="N",
            help="--protocol video: at most N frames per video (default: all)",
        ),
        option(
            "--start",
            type=int,
            default=0,
            metavar="N",
            help="--protocol video: first frame read (frames count from 0; default 0)",
        ),
        option(
            "--baseline",
            metavar="RUN_DIR",
            help="a finished audit at the same --difficulty: write imagenet_p.json with the "
            "flip rates (flip probability / the baseline's), mFR and mT5D over the sequences "
            "both ran",
            convert=absolute,
        ),
    ),
)


def format_flip_rates(out: str | os.PathLike) -> str | None:
    """Console lines of imagenet_p.json (None when the run has none)."""
    path = Path(out) / "imagenet_p.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())

    def show(value, digits=3):
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [
        f"\nflip rates against {record['baseline']['model']} (difficulty "
        f"{record['difficulty']}; Hendrycks & Dietterich, ICLR 2019):"
    ]
    for key, row in record["perturbations"].items():
        lines.append(
            f"  {key:<11} {row['style']:<17} FP {show(row['flip_probability'], 4)} / "
            f"{show(row['baseline_flip_probability'], 4)} = FR {show(row['flip_rate'])}   "
            f"T5D {show(row['top5_distance'], 2)} / {show(row['baseline_top5_distance'], 2)}"
            f" = {show(row['top5_distance_rate'])}"
        )
    lines.append(f"  mFR {show(record['mFR'])}   mT5D {show(record['mT5D'])}")
    if not record["baseline"]["same_images"]:
        lines.append("  (the baseline ran on other images)")
    return "\n".join(lines)


GENERATED = ("translate", "rotate", "tilt", "rescale", "brightness")


def format_sequence_note(summary: dict) -> str | None:
    """A line saying which rows are ImageNet-P-style (generated) sequences, when any are."""
    keys = [k for k in summary["protocols"] if k.split("@")[0] in GENERATED]
    if not keys:
        return None
    return (
        f"{', '.join(keys)}: ImageNet-P-style sequences generated from the stills "
        "(make_imagenet_p.py's geometry, not x264-encoded like the official set: compare them "
        "with each other, not with published ImageNet-P numbers)"
    )
