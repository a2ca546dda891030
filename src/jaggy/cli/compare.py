"""`jaggy compare MODEL DATA --remedy SPEC ...`: a model against its remedies."""

from __future__ import annotations

import argparse

from ..errors import ArgumentError
from ._common import (
    CHECKPOINT,
    MODEL,
    PROTOCOL_OPTIONS,
    RANDOM_WEIGHTS,
    REMEDY,
    RESUME,
    RUNTIME_OPTIONS,
    format_table,
    output_folder,
)
from ._options import command, option
from .audit import AUDIT_DATA_OPTIONS, audit_config

TABLE_METRICS = ("p_top1_change", "mac", "consistency", "path_consistency", "accuracy")


OPTIONS = (
    MODEL.but(help="model spec (see jaggy audit)"),
    CHECKPOINT.but(help="state dict for the base model"),
    RANDOM_WEIGHTS.but(help=None),
    REMEDY.but(
        help="a variant: one remedy (blurpool:4, aps, circular) or a chain "
        "joined by '+' (aps+circular); repeatable",
        to=None,  # the variants carry the remedies
    ),
    *AUDIT_DATA_OPTIONS,
    *PROTOCOL_OPTIONS,
    *RUNTIME_OPTIONS,
    output_folder("jaggy-compare").but(help="output folder"),
    RESUME.but(help="continue interrupted variants"),
    option(
        "--distill",
        type=int,
        default=0,
        metavar="N",
        help="distil each variant for N epochs to the base model's soft outputs on DATA "
        "(unlabelled) before auditing it",
        to=None,
    ),
    option("--temperature", type=float, default=4.0, help="distillation T", to=None),
)


@command("compare", OPTIONS)
def run(args: argparse.Namespace) -> int:
    """a model against its remedies (blurpool, aps, circular), same views

    Audit MODEL and each remedied variant on the same images and views; write compare.json
    (metrics with CIs, forward ms per image, parameters) and one run folder per variant under
    OUT/variants/."""
    if not args.remedy:
        raise ArgumentError("compare needs at least one --remedy variant (e.g. blurpool:4)")
    from ..compare._compare import compare_variants, parse_variant

    variants = [parse_variant(spec) for spec in args.remedy]
    config = audit_config(args, OPTIONS)
    result = compare_variants(
        config,
        variants,
        resume=args.resume,
        progress=not args.no_progress,
        distill_epochs=args.distill,
        temperature=args.temperature,
    )
    print(format_compare_table(result.rows))
    for row in result.rows:  # its numbers are right, but its speed is eager's
        if "graph_refused" in row:
            print(
                f"{row['variant']}: --graph {config.graph} refused, ran eagerly: {row['graph_refused']}"
            )
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
    return format_table(header, lines)
