"""`jaggy compare MODEL DATA --remedy SPEC ...`: a model against its remedies."""

from __future__ import annotations

import argparse

from ..compare._compare import compare_variants, parse_variant
from ..engine._config import DEFAULT_PROTOCOLS
from ..errors import ArgumentError
from ._common import add_data_args, add_protocol_args, add_runtime_args
from .audit import config_from_args

TABLE_METRICS = ("p_top1_change", "mac", "consistency", "path_consistency", "accuracy")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="a model against its remedies (blurpool, aps, circular), same views",
        description="Audit MODEL and each remedied variant on the same images and views; write "
        "compare.json (metrics with CIs, forward ms per image, parameters) and one run folder "
        "per variant under OUT/variants/.",
    )
    parser.add_argument("model", metavar="MODEL", help="model spec (see jaggy audit)")
    parser.add_argument("--checkpoint", metavar="PATH", help="state dict for the base model")
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument(
        "--remedy",
        action="append",
        default=[],
        metavar="SPEC",
        help="a variant: one remedy (blurpool:4, aps, circular) or a chain "
        "joined by '+' (aps+circular); repeatable",
    )
    add_data_args(parser)
    add_protocol_args(parser, list(DEFAULT_PROTOCOLS))
    add_runtime_args(parser)
    parser.add_argument("--out", default="jaggy-compare", help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue interrupted variants")
    parser.add_argument(
        "--distill",
        type=int,
        default=0,
        metavar="N",
        help="distil each variant for N epochs to the base model's soft outputs on DATA "
        "(unlabelled) before auditing it",
    )
    parser.add_argument("--temperature", type=float, default=4.0, help="distillation T")
    parser.set_defaults(func=run, chunk_images=32, consistency_pairs=10, fourier_step=0.25)


def run(args: argparse.Namespace) -> int:
    if not args.remedy:
        raise ArgumentError("compare needs at least one --remedy variant (e.g. blurpool:4)")
    variants = [parse_variant(spec) for spec in args.remedy]
    config = config_from_args(args, remedies=[])  # variants carry the remedies
    result = compare_variants(
        config,
        variants,
        resume=args.resume,
        progress=not args.no_progress,
        distill_epochs=args.distill,
        temperature=args.temperature,
    )
    print(format_compare_table(result.rows))
    print(f"\ncompare.json and one run per variant in {result.out}/")
    return 0


def format_compare_table(rows: list[dict]) -> str:
    """One line per (variant, protocol); speed and size per variant."""
    header = ["variant", "protocol", *TABLE_METRICS, "ms/img", "x base", "params"]
    lines = []
    for row in rows:
        for key, entry in row["protocols"].items():
            cells = [row["variant"], key]
            for metric in TABLE_METRICS:
                value = entry[metric]["value"]
                cells.append("-" if value is None else f"{value:.3f}")
            cells += [
                f"{row['ms_per_image']:.1f}",
                f"{row['ms_ratio_to_base']:.2f}",
                f"{row['params']:,}",
            ]
            lines.append(cells)
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]
    text = [
        "  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    text += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines]
    return "\n".join(text)
