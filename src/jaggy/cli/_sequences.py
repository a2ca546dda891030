"""Arguments of the sequence metrics and inputs: ImageNet-P's difficulty, pm-k, videos."""

from __future__ import annotations

import argparse


def add_sequence_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("perturbation sequences and videos")
    group.add_argument(
        "--difficulty",
        type=int,
        default=1,
        metavar="D",
        help="flip_probability and top5_distance compare views D apart, as ImageNet-P's "
        "test.py does (default 1)",
    )
    group.add_argument(
        "--pmk",
        type=int,
        default=10,
        metavar="K",
        help="pmk_accuracy: a view counts as right only when it and every view within K of "
        "it are right (Shankar et al., ICCV 2021; default 10)",
    )
    group.add_argument(
        "--frame-stride",
        type=int,
        default=1,
        metavar="N",
        help="--protocol video: read every N-th frame (default 1)",
    )
    group.add_argument(
        "--max-frames",
        type=int,
        metavar="N",
        help="--protocol video: at most N frames per video (default: all)",
    )
    group.add_argument(
        "--start",
        type=int,
        default=0,
        metavar="N",
        help="--protocol video: first frame read (frames count from 0; default 0)",
    )


DEFAULTS = {"difficulty": 1, "pmk": 10, "frame_stride": 1, "max_frames": None, "start": 0}


def sequence_options(args: argparse.Namespace) -> dict:
    """The AuditConfig fields of these arguments (defaults for commands without them)."""
    return {name: getattr(args, name, default) for name, default in DEFAULTS.items()}
