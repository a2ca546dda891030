"""`jaggy train`: the built-in canvas experiment (`--experiment canvas`), or training a model on
your own ImageFolder data (`jaggy train MODEL DATA`)."""

from __future__ import annotations

import argparse

from ..errors import ArgumentError
from ..train import VARIANTS, CanvasConfig, run_canvas_experiment, tiny_config
from ..train._canvas import CanvasGeometry

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
    parser.add_argument("data", metavar="DATA", nargs="?", help="ImageFolder of your data")
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
    parser.add_argument("--epochs", type=int, help="training epochs (canvas default 15)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, help="peak learning rate (canvas default 0.05)")
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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", default="jaggy-train", help="output folder (a new one)")
    parser.set_defaults(func=run)


def canvas_config(args: argparse.Namespace) -> CanvasConfig:
    common = dict(
        out=args.out,
        seed=args.seed,
        device=args.device,
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
    raise ArgumentError("give --experiment canvas, or MODEL and DATA to train on your data")


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
