"""`jaggy audit MODEL [DATA]`: the study's measurements on any model and images."""

from __future__ import annotations

import argparse
import sys

from .._gate import check, parse_rules
from ..engine import AuditConfig, run_audit
from ..engine._config import DEFAULT_PROTOCOLS
from ..errors import JaggyError
from ..metrics import DEFAULT_FEATURE_THRESHOLD
from ..remedies._spec import validate_remedies
from ._common import (
    DATA,
    FOURIER_STEP,
    IMAGES,
    LABELS,
    MODEL_OPTIONS,
    OVERWRITE,
    PROTOCOL_OPTIONS,
    RESUME,
    RUNTIME_OPTIONS,
    SAMPLES,
    absolute,
    format_summary_table,
    output_folder,
)
from ._options import Group, call_kwargs, command, option
from ._sequences import (
    SEQUENCE_OPTIONS,
    format_flip_rates,
    format_sequence_note,
)

# jaggy audit's own options, after the shared groups.
AUDIT_OPTIONS = (
    output_folder("jaggy-out"),
    RESUME,
    OVERWRITE.but(
        help="start afresh in an --out that holds another run or files jaggy did not write "
        "(jaggy deletes only its own chunks and outputs there, nothing else)"
    ),
    option(
        "--hash-images",
        action="store_true",
        help="fingerprint each image by a sha256 of its bytes, not just its size and "
        "modification time, so that --resume notices any change (reads every image once)",
    ),
    option(
        "--fail-under",
        action="append",
        default=[],
        metavar="[PROTOCOL:]METRIC=V",
        help="exit 1 when a metric is worse than V (above it for "
        "p_top1_change, mac, jaggedness, top5_distance; below it for accuracy, "
        "worst_case_accuracy, robust_accuracy, consistency, path_consistency); repeatable",
        to=None,
    ),
    option(
        "--chunk-images",
        type=int,
        default=32,
        help="images per committed chunk (the unit of resume and of sharding across "
        "torchrun ranks; default 32)",
    ),
    option(
        "--consistency-pairs",
        type=int,
        default=10,
        metavar="K",
        help="random view pairs per image: the pairs of zhang and aps_roll (their "
        "consistency), and the pairs of path_consistency (default 10)",
        to="consistency_k",
    ),
    FOURIER_STEP,
    option(
        "--report",
        action="store_true",
        help="also write report.html into --out at the end",
        to=None,
    ),
)
ANNOTATION_OPTIONS = (
    option(
        "--annotations",
        metavar="FILE",
        help="annotated objects (COCO JSON, VOC/ImageNet XML, ImageNet CSV, YOLO folder) of "
        "the images in DATA: one bbox sequence per object (default protocol then: bbox)",
        convert=absolute,
    ),
    option(
        "--bbox-margin",
        type=float,
        default=0.1,
        metavar="M",
        help="bbox crop margin on each side, as a fraction of the object's larger side "
        "(default 0.1)",
    ),
)
MEASURE_OPTIONS = Group(
    "representation change (any backbone, with or without a classifier head)",
    (
        option(
            "--measure",
            default="logits",
            metavar="WHAT",
            help="what each view is measured by: logits (default; class metrics), features "
            "(pooled penultimate features: the input of the final classifier, or the output "
            "of a model without a head), features:LAYER (the named layer's output, averaged "
            "over its positions, e.g. features:blocks.5), or both joined by a comma "
            "(logits,features; 'both' for short)",
        ),
        option(
            "--feature-threshold",
            type=float,
            default=DEFAULT_FEATURE_THRESHOLD,
            metavar="T",
            help="a pair of views changes its representation when the cosine distance of its "
            f"features exceeds T (representation_change_rate, fooling_rate; default "
            f"{DEFAULT_FEATURE_THRESHOLD:g})",
        ),
        option(
            "--save-features",
            action="store_true",
            help="also write every view's feature vector to features.npy (one row per row of "
            "predictions.parquet; resumes and shards with the run)",
        ),
    ),
)
WORST_CASE_OPTIONS = Group(
    "worst case",
    (
        option(
            "--worst-case",
            action="append",
            default=[],
            metavar="KIND",
            help="a worst-case set, key worst@KIND (repeatable): circular (AFC: every roll in "
            "(1..31)^2), crop (AFC: every crop offset), fourier (AFC: fractional shifts), grid "
            "(Engstrom's 31 rotations x 5 x 5 translations), randomK (K random draws, e.g. "
            "random10; worst_of_k_accuracy is Engstrom's worst-of-K); robust_accuracy counts "
            "the images kept at every view; without --protocol only these sets run",
        ),
        option(
            "--exhaustive",
            action="store_true",
            help="compute every view of the worst-case sets (default: stop each image at its "
            "first failing batch; the robust answers are the same; randomK always runs every "
            "view)",
        ),
    ),
)
# Paths are recorded absolute (see `absolute`).
AUDIT_DATA_OPTIONS = (DATA.but(convert=absolute), SAMPLES, LABELS.but(convert=absolute), IMAGES)
OPTIONS = (
    *MODEL_OPTIONS,
    *AUDIT_DATA_OPTIONS,
    *PROTOCOL_OPTIONS,
    *RUNTIME_OPTIONS,
    *AUDIT_OPTIONS,
    SEQUENCE_OPTIONS,
    *ANNOTATION_OPTIONS,
    MEASURE_OPTIONS,
    WORST_CASE_OPTIONS,
)


def default_protocols(args: argparse.Namespace) -> list[str]:
    """--protocol as given; else bbox for --annotations, none beside --worst-case, else the
    default pair."""
    if args.protocol:
        return list(args.protocol)
    if getattr(args, "annotations", None):
        return ["bbox"]
    return [] if getattr(args, "worst_case", None) else list(DEFAULT_PROTOCOLS)


def audit_config(args: argparse.Namespace, options) -> AuditConfig:
    """The AuditConfig of the parsed arguments of `options` (the fields they leave out keep
    their defaults)."""
    return AuditConfig(protocols=default_protocols(args), **call_kwargs(args, options))


@command("audit", OPTIONS)
def run(args: argparse.Namespace) -> int:
    """measure how often the answer changes under tiny transformations

    Run the study's protocols on MODEL and DATA; write predictions.parquet, summary.json and
    manifest.json to --out."""
    bounds = parse_rules(
        args.fail_under,
        default_protocols(args) + (["worst"] if args.worst_case else []),
        operators=["="],
        option="--fail-under",
    )
    validate_remedies(args.remedy)
    config = audit_config(args, OPTIONS)
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
        from ..report import write_report

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
