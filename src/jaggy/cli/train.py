"""`jaggy train`: the built-in canvas experiment (`--experiment canvas`), or training a model on
your own ImageFolder data (`jaggy train MODEL DATA`)."""

from __future__ import annotations

import argparse

from ..errors import ArgumentError
from ..train import CanvasConfig, TrainConfig, run_canvas_experiment, train_on_data
from ..train._canvas import CanvasGeometry
from ..train._experiment import VARIANTS, tiny_config

EXPERIMENTS = ("canvas",)
TABLE_METRICS = ("accuracy", "p_top1_change", "jaggedness")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="learning invariance from data: the canvas experiment, or train on your data",
        description="jaggy train --experiment canvas: digits with a photographer's bias on a "
        "canvas, a small CNN (total stride 8) trained in variants (augmentation, remedies, "
        "distillation), each audited at every canvas position and several sizes; metrics by "
        "position density, image typicality and size in train.json, with figures.",
    )
    parser.add_argument("model", metavar="MODEL", nargs="?", help="model spec (your data)")
    parser.add_argument(
        "data",
        metavar="DATA",
        nargs="?",
        help="an ImageFolder (one sub-folder per class); any images with --distill",
    )
    parser.add_argument("--experiment", choices=EXPERIMENTS, help="a built-in experiment")
    parser.add_argument(
        "--variant",
        action="append",
        choices=list(VARIANTS),
        metavar="NAME",
        help=f"canvas variants to make (repeatable; default all: {', '.join(VARIANTS)})",
    )
    parser.add_argument("--canvas", type=int, default=40, help="canvas side in px (default 40)")
    parser.add_argument(
        "--size",
        type=int,
        action="append",
        metavar="S",
        help="object size for the evaluation (repeatable; default 10, 14, 18)",
    )
    parser.add_argument("--eval-images", type=int, default=40, metavar="N")
    parser.add_argument("--epochs", type=int, help="training epochs (canvas 15, your data 1)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, help="peak learning rate (canvas 0.05, your data 0.01)")
    parser.add_argument("--distill-epochs", type=int, default=5)
    parser.add_argument("--temperature", type=float, help="distillation T (default 4)")
    parser.add_argument(
        "--k", type=int, help="neighbours of the image typicality (default 5; --quick 3)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a run of seconds (small canvas, few digits, one epoch): checks the pipeline",
    )
    mine = parser.add_argument_group("training on your data (jaggy train MODEL DATA)")
    mine.add_argument("--labels", metavar="FILE", help="CSV/TSV: file name, class (--keep-head)")
    mine.add_argument(
        "--remedy",
        action="append",
        default=[],
        metavar="SPEC",
        help="remedy applied before training (repeatable, in order)",
    )
    mine.add_argument("--checkpoint", metavar="PATH", help="start from this state dict")
    mine.add_argument("--random-weights", action="store_true", help="train from scratch")
    mine.add_argument(
        "--augment",
        metavar="SPEC",
        help="translate:PX,scale:F,crop:S,flip (comma-separated) or none (default)",
    )
    mine.add_argument(
        "--keep-head",
        action="store_true",
        help="keep the model's classes (ImageNet class folders or --labels) instead of a new "
        "head sized from the class folders",
    )
    mine.add_argument(
        "--distill",
        action="store_true",
        help="fit the remedied model to the original model's soft outputs on DATA "
        "(unlabelled images; needs --remedy)",
    )
    mine.add_argument("--holdout", type=float, default=0.2, help="held-out fraction per class")
    mine.add_argument("--images", type=int, metavar="N", help="use the first N images")
    mine.add_argument("--momentum", type=float, default=0.9)
    mine.add_argument("--weight-decay", type=float, default=1e-4)
    mine.add_argument("--workers", type=int, default=0)
    mine.add_argument("--train-norm", action="store_true", help="update norm statistics too")
    mine.add_argument("--no-audit", action="store_true", help="skip the held-out audit")
    mine.add_argument(
        "--protocol",
        action="append",
        metavar="NAME",
        help="protocols of the held-out audit (repeatable; default crop and black)",
    )
    mine.add_argument("--steps", type=int, default=10, help="views per held-out image")
    mine.add_argument("--overwrite", action="store_true", help="replace an earlier checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--device",
        help="cpu, cuda, cuda:N, mps or auto (default: auto for your data, cpu for "
        "the canvas experiment)",
    )
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", default="jaggy-train", help="output folder (a new one)")
    parser.set_defaults(func=run)


def canvas_config(args: argparse.Namespace) -> CanvasConfig:
    common = dict(
        out=args.out,
        seed=args.seed,
        device=args.device or "cpu",
        threads=args.threads,
        figures=not args.no_figures,
        variants=tuple(args.variant or VARIANTS),
    )
    for name in ("temperature", "k"):
        if getattr(args, name) is not None:
            common[name] = getattr(args, name)
    if args.quick:
        return tiny_config(**common)
    settings = dict(
        geometry=CanvasGeometry(canvas=args.canvas),
        eval_images=args.eval_images,
        batch_size=args.batch_size,
        distill_epochs=args.distill_epochs,
    )
    if args.size:
        settings["eval_sizes"] = tuple(args.size)
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    if args.lr is not None:
        settings["lr"] = args.lr
    return CanvasConfig(**common, **settings)


def run(args: argparse.Namespace) -> int:
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
    return TrainConfig(
        model=args.model,
        data=args.data,
        out=args.out,
        labels=args.labels,
        remedies=list(args.remedy),
        checkpoint=args.checkpoint,
        random_weights=args.random_weights,
        augment=args.augment,
        keep_head=args.keep_head,
        distill=args.distill,
        temperature=args.temperature if args.temperature is not None else 4.0,
        epochs=args.epochs if args.epochs is not None else 1,
        batch_size=args.batch_size,
        lr=args.lr if args.lr is not None else 0.01,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        holdout=args.holdout,
        images=args.images,
        seed=args.seed,
        device=args.device or "auto",
        workers=args.workers,
        train_norm=args.train_norm,
        audit=not args.no_audit,
        protocols=list(args.protocol or ["crop", "black"]),
        sizes=list(args.size) if args.size else None,
        steps=args.steps,
        k=args.k if args.k is not None else 5,
        threads=args.threads,
        overwrite=args.overwrite,
    )


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
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    text.append("  ".join("-" * w for w in widths))
    text += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines]
    return "\n".join(text)
