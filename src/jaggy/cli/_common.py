"""Arguments shared by several subcommands (model spec, images, protocols, device)."""

from __future__ import annotations

import argparse

from ..engine._config import DTYPES, MEMORY_FORMATS
from ..errors import ArgumentError
from ..metrics import metric_info
from ..protocols import PATHS, list_protocols
from ..remedies import list_remedies, remedy_info


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="model spec: jaggy:efficientnet_lite0, timm:NAME (or NAME), "
        "tv:NAME[:WEIGHTS], py:package.module:factory",
    )
    parser.add_argument(
        "--checkpoint", metavar="PATH", help="state dict to load over the model (weights_only=True)"
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="build the architecture with random weights (no download needed)",
    )
    parser.add_argument(
        "--remedy",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"apply a remedy ({', '.join(remedy_info(n).syntax for n in list_remedies())}); "
        "repeatable, applied in order",
    )


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="folder of images (ImageFolder labels when sub-folders name "
        "ImageNet classes) or a text file listing image paths; with --protocol video: a "
        "video, a folder of frames, or a folder of videos and frame folders",
    )
    parser.add_argument(
        "--samples",
        action="store_true",
        help="use the sample photos shipped with scikit-image and matplotlib",
    )
    parser.add_argument(
        "--labels",
        metavar="FILE",
        help="CSV/TSV mapping file name to class (index, synset or name)",
    )
    parser.add_argument("--images", type=int, metavar="N", help="use the first N images")


def add_protocol_args(parser: argparse.ArgumentParser, default_protocols: list[str]) -> None:
    parser.add_argument(
        "--protocol",
        action="append",
        metavar="NAME",
        choices=list_protocols(),
        help=f"protocol (repeatable; default: {' '.join(default_protocols)}); "
        f"one of {', '.join(list_protocols())}",
    )
    parser.add_argument(
        "--path",
        default="diagonal",
        choices=PATHS,
        help="shift path (grid: STEPS x STEPS, serpentine order)",
    )
    parser.add_argument(
        "--steps", type=int, default=10, help="views per image along the path (default 10)"
    )
    parser.add_argument(
        "--size",
        type=int,
        action="append",
        metavar="S",
        help="embedded image size in px for black/mean/inpaint (repeatable; "
        "the study used 172, 140 and 117 at 224) and the first size of scale "
        "(default: 140/224 of the model's input size)",
    )


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size",
        default="auto",
        metavar="N|auto",
        help="views per forward pass, or 'auto' (default): probe a few batch sizes and "
        "memory formats on the first images and keep the fastest (recorded in manifest.json)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=DTYPES,
        help="compute dtype (float16/bfloat16 via autocast; float16 needs a GPU)",
    )
    parser.add_argument(
        "--memory-format",
        default="auto",
        choices=MEMORY_FORMATS,
        help="tensor layout of views and weights; auto (default): probed with "
        "--batch-size auto, contiguous otherwise",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="shorthand for --memory-format channels_last",
    )
    parser.add_argument(
        "--compile", action="store_true", help="run the model through torch.compile"
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for the model (default: torch's, e.g. OMP_NUM_THREADS); the count "
        "a run starts with is reused when it is resumed, so its numbers do not change",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="image decoding processes (default: on a CPU, one per core the model's threads "
        "leave free, so none when they take every core; several on a GPU machine)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for the random view pairs (zhang, aps_roll, path_consistency) and bootstrap CIs",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_batch_size(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise ArgumentError(
            f"--batch-size must be a positive integer or 'auto' (got {text!r})"
        ) from None
    if value < 1:
        raise ArgumentError(f"--batch-size must be a positive integer or 'auto' (got {text!r})")
    return value


TABLE_METRICS = (
    "p_top1_change",
    "mac",
    "jaggedness",
    "consistency",
    "path_consistency",
    "top5_distance",
    "accuracy",
    "worst_case_accuracy",
    "pmk_accuracy",
)


def format_summary_table(summary: dict) -> str:
    """A console table: one row per protocol, each metric as value [CI low, high]."""
    protocols = summary["protocols"]
    metrics = [
        m for m in TABLE_METRICS if any(p[m]["value"] is not None for p in protocols.values())
    ]
    header = ["protocol", "images"] + [metric_info(m).short for m in metrics]
    rows = []
    for key, entry in protocols.items():
        cells = [key, str(entry["n_images"])]
        for m in metrics:
            v, (lo, hi) = entry[m]["value"], entry[m]["ci95"]
            digits = metric_info(m).digits
            cells.append("-" if v is None else f"{v:.{digits}f} [{lo:.{digits}f},{hi:.{digits}f}]")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
