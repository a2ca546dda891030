"""`jaggy finetune MODEL DATA --remedy ... --epochs N` (deprecated): the same as
`jaggy train MODEL DATA --keep-head --augment crop:0.35,flip --holdout 0 --no-audit`."""

from __future__ import annotations

import argparse

from ..train import FinetuneConfig, finetune
from ..train._finetune import FINETUNE_AUGMENT, audit_command


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="deprecated: jaggy train MODEL DATA --keep-head (fine-tune a remedied model)",
        description="Deprecated alias of jaggy train MODEL DATA --keep-head --augment "
        "crop:0.35,flip --holdout 0 --no-audit. Needs labelled images (ImageNet class folders "
        "or --labels).",
    )
    parser.add_argument("model", metavar="MODEL", help="model spec (see jaggy audit)")
    parser.add_argument("data", metavar="DATA", help="folder or file list of labelled images")
    parser.add_argument("--labels", metavar="FILE", help="CSV/TSV: file name, class")
    parser.add_argument(
        "--remedy",
        action="append",
        default=[],
        metavar="SPEC",
        help="remedy applied before training (repeatable, in order)",
    )
    parser.add_argument("--checkpoint", metavar="PATH", help="start from this state dict")
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01, help="peak learning rate")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--images", type=int, metavar="N", help="use the first N images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument(
        "--train-norm",
        action="store_true",
        help="update normalisation statistics too (default: frozen, which suits small data sets)",
    )
    parser.add_argument("--out", default="jaggy-finetune")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a checkpoint.pt already in --out (refused otherwise)",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = FinetuneConfig(
        model=args.model,
        data=args.data,
        labels=args.labels,
        remedies=list(args.remedy),
        checkpoint=args.checkpoint,
        random_weights=args.random_weights,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        images=args.images,
        seed=args.seed,
        device=args.device,
        workers=args.workers,
        train_norm=args.train_norm,
        out=args.out,
        overwrite=args.overwrite,
    )
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
