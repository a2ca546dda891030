"""`jaggy audit MODEL [DATA]`: the study's measurements on any model and images."""

from __future__ import annotations

import argparse
import os
import sys

from .._gate import check, parse_rules
from ..engine import AuditConfig, run_audit
from ..engine._config import DEFAULT_PROTOCOLS
from ..errors import JaggyError
from ..remedies._spec import validate_remedies
from ..report import write_report
from ._common import (
    add_data_args,
    add_model_args,
    add_protocol_args,
    add_runtime_args,
    format_summary_table,
    parse_batch_size,
)
from ._sequences import (
    add_sequence_args,
    format_flip_rates,
    format_sequence_note,
    sequence_options,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="measure how often the answer changes under tiny transformations",
        description="Run the study's protocols on MODEL and DATA; write predictions.parquet, "
        "summary.json and manifest.json to --out.",
    )
    add_model_args(parser)
    add_data_args(parser)
    add_protocol_args(parser, list(DEFAULT_PROTOCOLS))
    add_runtime_args(parser)
    parser.add_argument("--out", default="jaggy-out", help="output folder (default jaggy-out)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in --out (same arguments)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --out that holds another run or files jaggy did not write "
        "(jaggy deletes only its own chunks and outputs there, nothing else)",
    )
    parser.add_argument(
        "--hash-images",
        action="store_true",
        help="fingerprint each image by a sha256 of its bytes, not just its size and "
        "modification time, so that --resume notices any change (reads every image once)",
    )
    parser.add_argument(
        "--fail-under",
        action="append",
        default=[],
        metavar="[PROTOCOL:]METRIC=V",
        help="exit 1 when a metric is worse than V (above it for "
        "p_top1_change, mac, jaggedness, top5_distance; below it for accuracy, "
        "worst_case_accuracy, consistency, path_consistency); repeatable",
    )
    parser.add_argument(
        "--chunk-images",
        type=int,
        default=32,
        help="images per committed chunk (the unit of resume and of sharding across "
        "torchrun ranks; default 32)",
    )
    parser.add_argument(
        "--consistency-pairs",
        type=int,
        default=10,
        metavar="K",
        help="random view pairs per image: the pairs of zhang and aps_roll (their "
        "consistency), and the pairs of path_consistency (default 10)",
    )
    parser.add_argument(
        "--fourier-step",
        type=float,
        default=0.25,
        help="sub-pixel step of the fourier protocol in px (default 0.25)",
    )
    parser.add_argument(
        "--report", action="store_true", help="also write report.html into --out at the end"
    )
    add_sequence_args(parser)
    parser.add_argument(
        "--annotations",
        metavar="FILE",
        help="annotated objects (COCO JSON, VOC/ImageNet XML, ImageNet CSV, YOLO folder) of "
        "the images in DATA: one bbox sequence per object (default protocol then: bbox)",
    )
    parser.add_argument(
        "--bbox-margin",
        type=float,
        default=0.1,
        metavar="M",
        help="bbox crop margin on each side, as a fraction of the object's larger side "
        "(default 0.1)",
    )
    parser.set_defaults(func=run)


def default_protocols(args: argparse.Namespace) -> list[str]:
    """--protocol as given; else bbox for --annotations, else the default pair."""
    if args.protocol:
        return list(args.protocol)
    return ["bbox"] if getattr(args, "annotations", None) else list(DEFAULT_PROTOCOLS)


def config_from_args(args: argparse.Namespace, remedies: list[str] | None = None) -> AuditConfig:
    """The AuditConfig of parsed arguments; `remedies` overrides --remedy (compare's variants)."""
    return AuditConfig(
        model=args.model,
        data=_absolute(args.data),
        samples=args.samples,
        labels=_absolute(args.labels),
        protocols=default_protocols(args),
        path=args.path,
        steps=args.steps,
        sizes=args.size,
        images=args.images,
        batch_size=parse_batch_size(args.batch_size),
        device=args.device,
        dtype=args.dtype,
        channels_last=args.channels_last,
        memory_format=args.memory_format,
        compile=args.compile,
        threads=args.threads,
        seed=args.seed,
        out=args.out,
        checkpoint=args.checkpoint,
        random_weights=args.random_weights,
        remedies=list(args.remedy if remedies is None else remedies),
        workers=args.workers,
        chunk_images=args.chunk_images,
        consistency_k=args.consistency_pairs,
        fourier_step=args.fourier_step,
        overwrite=getattr(args, "overwrite", False),
        hash_images=getattr(args, "hash_images", False),
        **sequence_options(args),
        annotations=_absolute(getattr(args, "annotations", None)),
        bbox_margin=getattr(args, "bbox_margin", 0.1),
    )


def _absolute(path: str | None) -> str | None:
    """Paths are recorded absolute: the report finds the images from anywhere, and `./imgs`
    and `imgs` resume the same run."""
    return None if path is None else os.path.abspath(path)


def run(args: argparse.Namespace) -> int:
    bounds = parse_rules(
        args.fail_under,
        default_protocols(args),
        operators=["="],
        option="--fail-under",
    )
    validate_remedies(args.remedy)
    config = config_from_args(args)
    result = run_audit(config, resume=args.resume, progress=not args.no_progress)
    if result.summary is None:  # a non-zero rank of torchrun: rank 0 reports
        return 0
    summary = result.summary.to_dict()
    print(format_summary_table(summary))
    sequence_note = format_sequence_note(summary)
    if sequence_note:
        print(sequence_note)
    rates = format_flip_rates(result.out)
    if rates:
        print(rates)
    print(
        f"\nresults in {result.out}/ (predictions.parquet, metrics.parquet, summary.json, "
        "manifest.json)"
    )
    skipped = result.manifest.skipped
    if skipped:
        print(f"skipped {len(skipped)} image(s); reasons in manifest.json", file=sys.stderr)
    nonfinite = result.manifest.nonfinite_views.get("count", 0)
    if nonfinite:
        print(
            f"{nonfinite} view(s) gave NaN or Inf outputs: the metrics of their protocols are "
            "undefined (examples under nonfinite_views in manifest.json)",
            file=sys.stderr,
        )
    if not result.summary.protocols:
        print(
            f"jaggy audit: error: every image was skipped ({len(skipped)}); see the reasons "
            f"in {result.out}/manifest.json",
            file=sys.stderr,
        )
        return 2
    if args.report:
        try:
            print(f"report: {write_report([result.out], result.out / 'report.html')}")
        except JaggyError as exc:
            raise JaggyError(
                f"the results are in {result.out}/, but not the report: {exc}"
            ) from exc
    gate = check(result.summary, bounds)
    for outcome in gate.failures:
        print(outcome, file=sys.stderr)
    return 0 if gate.passed else 1
