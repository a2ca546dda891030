"""`jaggy train`: the built-in canvas experiment (`--experiment canvas`), or training a model on
your own ImageFolder data (`jaggy train MODEL DATA`)."""

from __future__ import annotations

import argparse
import operator

from ..errors import ArgumentError
from ..train import CanvasConfig, TrainConfig, run_canvas_experiment, train_on_data
from ..train._canvas import CanvasGeometry
from ..train._experiment import VARIANTS, tiny_config
from ._common import (
    DATA,
    DEVICE,
    IMAGES,
    LABELS,
    LOADER_WORKERS,
    LR,
    MODEL,
    MOMENTUM,
    NO_FIGURES,
    NO_PROGRESS,
    OVERWRITE,
    RANDOM_WEIGHTS,
    SEED,
    START_CHECKPOINT,
    STEPS,
    THREADS,
    TRAIN_NORM,
    TRAINING_BATCH_SIZE,
    TRAINING_REMEDY,
    WEIGHT_DECAY,
    format_table,
    output_folder,
)
from ._options import Group, call_kwargs, command, option

EXPERIMENTS = ("canvas",)
TABLE_METRICS = ("accuracy", "p_top1_change", "jaggedness")


# Each option once; the parser's order is OPTIONS', the keywords of the two calls are
# CANVAS_COMMON (+ CANVAS_FULL without --quick) and YOUR_DATA.
MODEL_SPEC = MODEL.but(nargs="?", help="model spec (your data)")
TRAINING_DATA = DATA.but(
    help="an ImageFolder (one sub-folder per class); any images with --distill"
)
VARIANT = option(
    "--variant",
    action="append",
    choices=list(VARIANTS),
    metavar="NAME",
    help=f"canvas variants to make (repeatable; default all: {', '.join(VARIANTS)})",
    to="variants",
    convert=tuple,
)
CANVAS = option(
    "--canvas",
    type=int,
    default=40,
    help="canvas side in px (default 40)",
    to="geometry",
    convert=lambda side: CanvasGeometry(canvas=side),
)
SIZES = option(
    "--size",
    type=int,
    action="append",
    metavar="S",
    help="object size for the evaluation (repeatable; default 10, 14, 18)",
    to="sizes",
    convert=list,
)
EVAL_IMAGES = option("--eval-images", type=int, default=40, metavar="N")
EPOCHS = option("--epochs", type=int, help="training epochs (canvas 15, your data 1)")
BATCH = TRAINING_BATCH_SIZE.but(default=64)
PEAK_LR = LR.but(help="peak learning rate (canvas 0.05, your data 0.01)")
DISTILL_EPOCHS = option("--distill-epochs", type=int, default=5)
TEMPERATURE = option("--temperature", type=float, help="distillation T (default 4)")
K = option("--k", type=int, help="neighbours of the image typicality (default 5; --quick 3)")
OWN_DATA = Group(
    "training on your data (jaggy train MODEL DATA)",
    (
        LABELS.but(help="CSV/TSV: file name, class (--keep-head)"),
        TRAINING_REMEDY,
        START_CHECKPOINT,
        RANDOM_WEIGHTS.but(help="train from scratch"),
        option(
            "--augment",
            metavar="SPEC",
            help="translate:PX,scale:F,crop:S,flip (comma-separated) or none (default)",
        ),
        option(
            "--keep-head",
            action="store_true",
            help="keep the model's classes (ImageNet class folders or --labels) instead of a "
            "new head sized from the class folders",
        ),
        option(
            "--distill",
            action="store_true",
            help="fit the remedied model to the original model's soft outputs on DATA "
            "(unlabelled images; needs --remedy)",
        ),
        option("--holdout", type=float, default=0.2, help="held-out fraction per class"),
        IMAGES,
        MOMENTUM,
        WEIGHT_DECAY,
        LOADER_WORKERS,
        TRAIN_NORM.but(help="update norm statistics too"),
        option(
            "--no-audit",
            action="store_true",
            help="skip the held-out audit",
            to="audit",
            convert=operator.not_,
        ),
        option(
            "--protocol",
            action="append",
            metavar="NAME",
            help="protocols of the held-out audit (repeatable; default crop and black)",
            to="protocols",
            convert=list,
        ),
        STEPS.but(help="views per held-out image"),
        OVERWRITE.but(help="replace an earlier checkpoint"),
    ),
)
TRAIN_SEED = SEED.but(help=None)
TRAIN_DEVICE = DEVICE.but(
    default=None,
    help="cpu, cuda, cuda:N, mps or auto (default: auto for your data, cpu for "
    "the canvas experiment)",
)
TRAIN_THREADS = THREADS.but(metavar=None, help="CPU threads (default: torch's)")
OUT = output_folder("jaggy-train").but(help="output folder (a new one)")
OPTIONS = (
    MODEL_SPEC,
    TRAINING_DATA,
    option("--experiment", choices=EXPERIMENTS, help="a built-in experiment", to=None),
    VARIANT,
    CANVAS,
    SIZES,
    EVAL_IMAGES,
    EPOCHS,
    BATCH,
    PEAK_LR,
    DISTILL_EPOCHS,
    TEMPERATURE,
    K,
    option(
        "--quick",
        action="store_true",
        help="a run of seconds (small canvas, few digits, one epoch): checks the pipeline",
        to=None,
    ),
    OWN_DATA,
    TRAIN_SEED,
    TRAIN_DEVICE,
    TRAIN_THREADS,
    NO_FIGURES.but(help=None),
    NO_PROGRESS.but(help=None),
    OUT,
)
CANVAS_COMMON = (OUT, TRAIN_SEED, TRAIN_DEVICE, TRAIN_THREADS, NO_FIGURES, VARIANT, TEMPERATURE, K)
CANVAS_FULL = (
    CANVAS,
    EVAL_IMAGES,
    BATCH,
    DISTILL_EPOCHS,
    SIZES.but(to="eval_sizes", convert=tuple),
    EPOCHS,
    PEAK_LR,
)
YOUR_DATA = (
    MODEL_SPEC,
    TRAINING_DATA,
    SIZES,
    EPOCHS,
    BATCH,
    PEAK_LR,
    TEMPERATURE,
    K,
    *OWN_DATA.options,
    TRAIN_SEED,
    TRAIN_DEVICE,
    TRAIN_THREADS,
    OUT,
)


def canvas_config(args: argparse.Namespace) -> CanvasConfig:
    """The options given (the others keep CanvasConfig's or tiny_config's defaults)."""
    common = call_kwargs(args, CANVAS_COMMON, unset=False)
    if args.quick:
        return tiny_config(**common)
    return CanvasConfig(**common, **call_kwargs(args, CANVAS_FULL, unset=False))


@command("train", OPTIONS)
def run(args: argparse.Namespace) -> int:
    """learning invariance from data: the canvas experiment, or train on your data

    jaggy train --experiment canvas: digits with a photographer's bias on a canvas, a small CNN
    (total stride 8) trained in variants (augmentation, remedies, distillation), each audited at
    every canvas position and several sizes; metrics by position density, image typicality and
    size in train.json, with figures."""
    if args.experiment:
        if args.model or args.data:
            raise ArgumentError(
                "--experiment runs on its own data: drop MODEL and DATA, or drop --experiment"
            )
        result = run_canvas_experiment(canvas_config(args), progress=not args.no_progress)
        print(format_variant_table(result.record))
        seconds = result.record["seconds"]
        print(
            f"\n{len(result.record['variants'])} variants in {seconds['wall']:.0f} s "
            f"(CPU {seconds['cpu']:.0f} s); train.json, variants/ and figures/ in {result.out}/"
        )
        return 0
    if not (args.model and args.data):
        raise ArgumentError("give --experiment canvas, or MODEL and DATA to train on your data")
    result = train_on_data(data_config(args), progress=not args.no_progress)
    for entry in result.history:
        accuracy = entry["train_accuracy"]
        print(
            f"epoch {entry['epoch']}: loss {entry['loss']:.4f}"
            + (f", train accuracy {accuracy:.3f}" if accuracy is not None else "")
        )
    row = result.record["variants"][0]
    if "distill" in row:
        d = row["distill"]
        if d["kl_heldout_before"] is not None:
            print(
                f"KL to the original model on held-out images: {d['kl_heldout_before']:.4f} "
                f"-> {d['kl_heldout_after']:.4f}"
            )
    if "overall" in row:
        print(format_variant_table(result.record))
    print(f"checkpoint: {result.checkpoint}")
    print(f"audit it with: {result.record['audit_with']}")
    return 0


def data_config(args: argparse.Namespace) -> TrainConfig:
    """The options given (the others keep TrainConfig's defaults)."""
    return TrainConfig(**call_kwargs(args, YOUR_DATA, unset=False))


def format_variant_table(record: dict) -> str:
    """One line per variant: overall metrics and their CIs."""
    header = ["variant", *TABLE_METRICS]
    lines = []
    for row in record["variants"]:
        cells = [row["name"]]
        for metric in TABLE_METRICS:
            entry = row["overall"].get(metric) or {}
            value, ci = entry.get("value"), entry.get("ci95") or [None, None]
            if value is None:
                cells.append("-")
            else:
                cells.append(f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]")
        lines.append(cells)
    return format_table(header, lines)
