"""`jaggy report RUN_DIR [RUN_DIR ...] --out report.html`: one self-contained HTML report."""

from __future__ import annotations

import argparse

from .._checks import check_out
from ..report import ReportLimits, write_report
from ._options import call_kwargs, command, option

# The fields of ReportLimits, each an option with its default.
LIMITS = {
    "wall_images": "rows of each wall, spread over the jaggedness ranking",
    "curve_images": "images whose curves and views are drawn, per run",
    "thumbnails": "views shown per image and protocol",
}
LIMIT_OPTIONS = tuple(
    option(
        f"--{name.replace('_', '-')}",
        type=int,
        default=getattr(ReportLimits, name),
        metavar="N",
        help=f"{text} (default {getattr(ReportLimits, name)})",
        to=name,
    )
    for name, text in LIMITS.items()
)
OPTIONS = (
    option("runs", nargs="+", metavar="RUN_DIR", help="result folder(s) to report on"),
    option("--out", default="report.html", help="HTML file to write (default report.html)"),
    *LIMIT_OPTIONS,
)


@command("report", OPTIONS)
def run(args: argparse.Namespace) -> int:
    """write one self-contained HTML report of one or more result folders

    Write an HTML report (figures embedded, no external files) of the --out folders of jaggy
    audit, demo, layers or compare: headline metrics with CIs, P(c*) versus shift beside the
    views, the image x shift wall, scale curves, comparisons across runs with the winner per
    metric, and each run's manifest and skipped inputs."""
    check_out(args.out, "the HTML file to write (e.g. --out report.html)")
    limits = ReportLimits(**call_kwargs(args, LIMIT_OPTIONS))
    path = write_report(args.runs, args.out, limits)
    print(f"report: {path}")
    return 0
