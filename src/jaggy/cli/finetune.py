"""`jaggy finetune MODEL DATA --remedy ... --epochs N` (deprecated): the same as
`jaggy train MODEL DATA --keep-head --augment crop:0.35,flip --holdout 0 --no-audit`."""

from __future__ import annotations

import argparse

from ..train import FinetuneConfig, finetune
from ..train._finetune import FINETUNE_AUGMENT, audit_command
from . import _common as common
from ._options import call_kwargs, command, option

# jaggy train MODEL DATA's options, with the defaults and wording of the older command.
OPTIONS = (
    common.MODEL.but(help="model spec (see jaggy audit)"),
    common.DATA.but(nargs=None, help="folder or file list of labelled images"),
    common.LABELS.but(help="CSV/TSV: file name, class"),
    common.TRAINING_REMEDY,
    common.START_CHECKPOINT,
    common.RANDOM_WEIGHTS.but(help=None),
    option("--epochs", type=int, default=1),
    common.TRAINING_BATCH_SIZE.but(default=32),
    common.LR.but(default=0.01),
    common.MOMENTUM,
    common.WEIGHT_DECAY,
    common.IMAGES,
    common.SEED.but(help=None),
    common.DEVICE.but(help=None),
    common.LOADER_WORKERS,
    common.TRAIN_NORM.but(
        help="update normalisation statistics too (default: frozen, which suits small data sets)"
    ),
    common.output_folder("jaggy-finetune").but(help=None),
    common.OVERWRITE.but(help="replace a checkpoint.pt already in --out (refused otherwise)"),
    common.NO_PROGRESS.but(help=None),
)


@command("finetune", OPTIONS)
def run(args: argparse.Namespace) -> int:
    """deprecated: jaggy train MODEL DATA --keep-head (fine-tune a remedied model)

    Deprecated alias of jaggy train MODEL DATA --keep-head --augment crop:0.35,flip --holdout 0
    --no-audit. Needs labelled images (ImageNet class folders or --labels)."""
    config = FinetuneConfig(**call_kwargs(args, OPTIONS))
    result = finetune(config, progress=not args.no_progress)
    for entry in result.history:
        print(
            f"epoch {entry['epoch']}: loss {entry['loss']:.4f}, "
            f"train accuracy {entry['train_accuracy']:.3f}"
        )
    print(f"checkpoint: {result.checkpoint}")
    print(f"audit it with: {audit_command(config.model, config.remedies, result.checkpoint)}")
    print(
        "note: jaggy finetune is deprecated; the same is jaggy train MODEL DATA --keep-head "
        f"--augment {FINETUNE_AUGMENT} --holdout 0 --no-audit"
    )
    return 0
