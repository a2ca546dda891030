"""`jaggy demo`: the embedded model on the sample photos, every paper protocol, figures."""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from ..engine import AuditConfig, AuditResult, run_audit
from ..engine._store import RunStore
from ..errors import ArgumentError, RunMismatchError
from ..models import LoadedModel, embedded_names, imagenet_class_names
from ._common import BATCH_SIZE, DEVICE, NO_PROGRESS, STEPS, format_summary_table, output_folder
from ._options import call_kwargs, command, option

DEMO_PROTOCOLS = ["study_crop", "study_black", "crop", "black", "inpaint", "scale"]
DEMO_SIZES = [172, 140, 117]


OPTIONS = (
    option("--model", default="jaggy:efficientnet_lite0", choices=embedded_names()),
    output_folder("jaggy-demo"),
    STEPS.but(help="views per image (default 10)"),
    DEVICE.but(help=None),
    BATCH_SIZE,  # the automatic configuration, as for `jaggy audit`
    NO_PROGRESS.but(help=None),
)


def demo_config(args: argparse.Namespace) -> AuditConfig:
    return AuditConfig(
        samples=True,
        protocols=list(DEMO_PROTOCOLS),
        sizes=list(DEMO_SIZES),
        **call_kwargs(args, OPTIONS),
    )


@command("demo", OPTIONS)
def run(args: argparse.Namespace) -> int:
    """the study's protocols on an embedded model and sample photos

    Audit an embedded ImageNet model (offline) on the sample photos with the study's own Table 1
    protocols (study_crop; study_black at 172/140/117 px) and jaggy's path versions (crop; black
    and inpaint at 172/140/117 px; scale), then draw P(reference class) versus shift for each
    photo."""
    started = time.perf_counter()
    config = demo_config(args)
    outputs = demo_job(config, progress=not args.no_progress)
    print(format_summary_table(outputs.result.summary.to_dict()))
    print(
        f"\n{len(outputs.figures)} figures of P(reference class) versus shift in "
        f"{config.out}/figures/"
    )
    print(f"report: {outputs.report}")
    print(f"results in {config.out}/ ({time.perf_counter() - started:.0f} s)")
    return 0


@dataclass
class DemoOutputs:
    """What the demo's job made: the audit, its figures and its report."""

    result: AuditResult
    figures: list[Path]
    report: Path


def demo_job(
    config: AuditConfig, *, loaded: LoadedModel | None = None, progress: bool = True
) -> DemoOutputs:
    """The demo's whole job: the audit (a finished demo in `config.out` is reused), the
    figures of P(reference class) versus shift, and the report. `loaded`: the model, when
    the caller has loaded it already."""
    from ..report import write_report
    from ..report._curve_pngs import start_shift_curve_pngs

    resume = RunStore(config.out).read_run() is not None
    started: list = []  # the PNGs being drawn

    def draw_figures(out: Path) -> None:
        # In worker processes, from the whole predictions.parquet, while this process
        # computes the metrics and writes the report.
        started.append(start_shift_curve_pngs(out, out / "figures", imagenet_class_names()))

    def draw_figures_early(out: Path) -> None:
        with contextlib.suppress(Exception):  # the audit still finishes: tried again after it
            draw_figures(out)

    try:
        result = run_audit(
            config, resume=resume, progress=progress, loaded=loaded, on_merged=draw_figures_early
        )
    except RunMismatchError as exc:
        raise ArgumentError(
            f"'{config.out}' holds a demo made with other settings; delete it "
            "or choose another --out"
        ) from exc
    except BaseException:
        for figures in started:  # no worker outlives a failed audit
            with contextlib.suppress(Exception):
                figures.wait()
        raise
    if not started:
        draw_figures(result.out)
    try:
        report = write_report([result.out], result.out / "report.html")
    finally:
        drawn = started[0].wait()
    return DemoOutputs(result, drawn, report)
