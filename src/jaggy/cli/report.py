"""`jaggy report RUN_DIR [RUN_DIR ...] --out report.html`: one self-contained HTML report."""

from __future__ import annotations

import argparse

from .._checks import check_out
from ..report import ReportLimits, write_report


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML report of one or more result folders",
        description="Write an HTML report (figures embedded, no external files) of the --out "
        "folders of jaggy audit, demo, layers or compare: headline metrics with CIs, P(c*) "
        "versus shift beside the views, the image x shift wall, scale curves, comparisons "
        "across runs with the winner per metric, and each run's manifest and skipped inputs.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="result folder(s) to report on")
    parser.add_argument(
        "--out", default="report.html", help="HTML file to write (default report.html)"
    )
    parser.add_argument(
        "--wall-images",
        type=int,
        default=ReportLimits.wall_images,
        metavar="N",
        help=f"rows of each wall, spread over the jaggedness ranking (default "
        f"{ReportLimits.wall_images})",
    )
    parser.add_argument(
        "--curve-images",
        type=int,
        default=ReportLimits.curve_images,
        metavar="N",
        help=f"images whose curves and views are drawn, per run (default "
        f"{ReportLimits.curve_images})",
    )
    parser.add_argument(
        "--thumbnails",
        type=int,
        default=ReportLimits.thumbnails,
        metavar="N",
        help=f"views shown per image and protocol (default {ReportLimits.thumbnails})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_out(args.out, "the HTML file to write (e.g. --out report.html)")
    limits = ReportLimits(
        wall_images=args.wall_images,
        curve_images=args.curve_images,
        thumbnails=args.thumbnails,
    )
    path = write_report(args.runs, args.out, limits)
    print(f"report: {path}")
    return 0
