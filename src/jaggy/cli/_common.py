"""Options shared by several subcommands, in named groups (the model, the images, the views of
an audit, where the model runs), and the console table of a summary."""

from __future__ import annotations

import operator
import os

from ..engine._config import DEFAULT_PROTOCOLS, DTYPES, GRAPHS, MEMORY_FORMATS
from ..errors import ArgumentError
from ..metrics import metric_info
from ..protocols import PATHS, list_protocols
from ..remedies import list_remedies, remedy_info
from ._options import Option, option


def absolute(path: str | None) -> str | None:
    """Paths are recorded absolute: the report finds the images from anywhere, and `./imgs`
    and `imgs` resume the same run."""
    return None if path is None else os.path.abspath(path)


def output_folder(default: str) -> Option:
    """--out, a folder with its default named in the help."""
    return option("--out", default=default, help=f"output folder (default {default})")


# The model and how it is changed before it runs.
MODEL = option(
    "model",
    metavar="MODEL",
    help="model spec: jaggy:efficientnet_lite0, timm:NAME (or NAME), "
    "tv:NAME[:WEIGHTS], py:package.module:factory",
)
CHECKPOINT = option(
    "--checkpoint", metavar="PATH", help="state dict to load over the model (weights_only=True)"
)
RANDOM_WEIGHTS = option(
    "--random-weights",
    action="store_true",
    help="build the architecture with random weights (no download needed)",
)
REMEDY = option(
    "--remedy",
    action="append",
    default=[],
    metavar="SPEC",
    help=f"apply a remedy ({', '.join(remedy_info(n).syntax for n in list_remedies())}); "
    "repeatable, applied in order",
    to="remedies",
    convert=list,
)
MODEL_CHANGES = (CHECKPOINT, RANDOM_WEIGHTS, REMEDY)  # the keywords of `load_model`
MODEL_OPTIONS = (MODEL, *MODEL_CHANGES)

# The images.
DATA = option(
    "data",
    nargs="?",
    metavar="DATA",
    help="folder of images (ImageFolder labels when sub-folders name "
    "ImageNet classes) or a text file listing image paths; with --protocol video: a "
    "video, a folder of frames, or a folder of videos and frame folders",
)
SAMPLES = option(
    "--samples",
    action="store_true",
    help="use the sample photos shipped with scikit-image and matplotlib",
)
LABELS = option(
    "--labels", metavar="FILE", help="CSV/TSV mapping file name to class (index, synset or name)"
)
IMAGES = option("--images", type=int, metavar="N", help="use the first N images")
DATA_OPTIONS = (DATA, SAMPLES, LABELS, IMAGES)

# The views of an audit.
PROTOCOL = option(
    "--protocol",
    action="append",
    metavar="NAME",
    choices=list_protocols(),
    help=f"protocol (repeatable; default: {' '.join(DEFAULT_PROTOCOLS)}); "
    f"one of {', '.join(list_protocols())}",
    to=None,  # the command chooses the default (see audit.default_protocols)
)
PATH = option(
    "--path",
    default="diagonal",
    choices=PATHS,
    help="shift path (grid: STEPS x STEPS, serpentine order)",
)
STEPS = option("--steps", type=int, default=10, help="views per image along the path (default 10)")
SIZE = option(
    "--size",
    type=int,
    action="append",
    metavar="S",
    help="embedded image size in px for black/mean/inpaint (repeatable; "
    "the study used 172, 140 and 117 at 224) and the first size of scale "
    "(default: 140/224 of the model's input size)",
    to="sizes",
)
PROTOCOL_OPTIONS = (PROTOCOL, PATH, STEPS, SIZE)
FOURIER_STEP = option(
    "--fourier-step",
    type=float,
    default=0.25,
    help="sub-pixel step of the fourier protocol in px (default 0.25)",
)


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


# Where and how the model runs.
BATCH_SIZE = option(
    "--batch-size",
    default="auto",
    metavar="N|auto",
    help="views per forward pass, or 'auto' (default): probe a few batch sizes and "
    "memory formats on the first images and keep the fastest (recorded in manifest.json)",
    convert=parse_batch_size,
)
DEVICE = option("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
DTYPE = option(
    "--dtype",
    default="float32",
    choices=DTYPES,
    help="compute dtype (float16/bfloat16 via autocast; float16 needs a GPU)",
)
MEMORY_FORMAT = option(
    "--memory-format",
    default="auto",
    choices=MEMORY_FORMATS,
    help="tensor layout of views and weights; auto (default): probed with "
    "--batch-size auto, contiguous otherwise",
)
CHANNELS_LAST = option(
    "--channels-last", action="store_true", help="shorthand for --memory-format channels_last"
)
GRAPH = option(
    "--graph",
    default="auto",
    choices=GRAPHS,
    help="how the model runs: eager, frozen (a frozen TorchScript graph of a copy of it) or "
    "onnx (ONNX Runtime on an export of a copy), checked against eager on real views; CPU, "
    "float32, no hooks; auto (default): tried by --batch-size auto when they pay for their "
    "build, eager otherwise",
)
COMPILE = option("--compile", action="store_true", help="run the model through torch.compile")
THREADS = option(
    "--threads",
    type=int,
    metavar="N",
    help="CPU threads for the model (default: torch's, e.g. OMP_NUM_THREADS); the count "
    "a run starts with is reused when it is resumed, so its numbers do not change",
)
WORKERS = option(
    "--workers",
    type=int,
    metavar="N",
    help="image decoding processes (default: on a CPU, one per core the model's threads "
    "leave free, so none when they take every core; several on a GPU machine)",
)
SEED = option(
    "--seed",
    type=int,
    default=0,
    help="seed for the random view pairs (zhang, aps_roll, path_consistency) and bootstrap CIs",
)
NO_PROGRESS = option("--no-progress", action="store_true", help="hide the progress bar", to=None)
RUNTIME_OPTIONS = (
    BATCH_SIZE,
    DEVICE,
    DTYPE,
    MEMORY_FORMAT,
    CHANNELS_LAST,
    GRAPH,
    COMPILE,
    THREADS,
    WORKERS,
    SEED,
    NO_PROGRESS,
)

# Outputs.
NO_FIGURES = option(
    "--no-figures",
    action="store_true",
    help="write no PNG figures",
    to="figures",
    convert=operator.not_,
)
OVERWRITE = option("--overwrite", action="store_true")
RESUME = option(
    "--resume",
    action="store_true",
    help="continue an interrupted run in --out (same arguments)",
    to=None,
)

# Training (jaggy train MODEL DATA and jaggy finetune).
TRAINING_REMEDY = REMEDY.but(help="remedy applied before training (repeatable, in order)")
START_CHECKPOINT = CHECKPOINT.but(help="start from this state dict")
TRAINING_BATCH_SIZE = option("--batch-size", type=int)
LR = option("--lr", type=float, help="peak learning rate")
MOMENTUM = option("--momentum", type=float, default=0.9)
WEIGHT_DECAY = option("--weight-decay", type=float, default=1e-4)
LOADER_WORKERS = option("--workers", type=int, default=0)
TRAIN_NORM = option("--train-norm", action="store_true")


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
    "feature_cos_distance",
    "representation_change_rate",
    "fooling_rate",
    "robust_accuracy",
    "worst_of_k_accuracy",
    "failing_shift",
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
    return format_table(header, rows)


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A console table: columns left-aligned to their widest cell, a dashed rule under the
    header."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )
