"""`jaggy layers MODEL [DATA]`: where shift invariance breaks, layer by layer."""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from ..errors import ArgumentError, DataError
from ..protocols import PATHS
from ..remedies import validate_remedies
from ._common import add_data_args, add_model_args

DEFAULT_SHIFTS = 32


def register(subparsers) -> None:
    from ..layers import SHIFT_PROTOCOLS

    parser = subparsers.add_parser(
        "layers",
        help="where invariance breaks: stride map, per-layer equivariance, aliasing energy",
        description="Shift each image by 0..T steps along a path and compare every layer's "
        "feature map with the unshifted one moved by the same amount (exact where the shift is a "
        "multiple of the layer's cumulative stride, band-limited interpolation otherwise); measure "
        "the aliasing energy at every subsampling layer. Writes layers.json, layers.parquet and "
        "figures to --out.",
    )
    add_model_args(parser)
    add_data_args(parser)
    parser.add_argument(
        "--protocol",
        default="crop",
        choices=list(SHIFT_PROTOCOLS),
        help="how images are shifted: crop (windows 1 px apart of the image resized to "
        "R + T + 1, the study's Crop protocol; default), circular (torch.roll, 1 px steps: exact "
        "equivariance tests, but a zero-padded model sees the wrap-around seam) or fourier "
        "(band-limited sub-pixel circular shifts)",
    )
    parser.add_argument(
        "--shifts",
        type=int,
        default=DEFAULT_SHIFTS,
        metavar="T",
        help=f"largest shift in steps: views 0..T (default {DEFAULT_SHIFTS}; a multiple of the "
        "total stride shows its period)",
    )
    parser.add_argument("--path", default="diagonal", choices=PATHS, help="shift path")
    parser.add_argument(
        "--fourier-step",
        type=float,
        default=0.25,
        metavar="PX",
        help="px per step of the fourier protocol (default 0.25)",
    )
    parser.add_argument(
        "--show-layer",
        action="append",
        metavar="NAME",
        help="layer for the feature-map and error-versus-shift figures (repeatable; default: the "
        "last layer at each cumulative stride)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=8, help="shifted views per forward pass (default 8)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for torch (default: 1 on a machine with at most 2 cores, where the "
        "many small per-layer reductions lose more to thread synchronisation than they gain; "
        "else torch's default)",
    )
    parser.add_argument(
        "--out", default="jaggy-layers", help="output folder (default jaggy-layers)"
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument(
        "--list-layers",
        action="store_true",
        help="print the stride map and exit (no images needed)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no per-image lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import resolve_device
    from ..engine._manifest import now_iso, package_versions
    from ..layers import LayerAnalysis, shift_protocol, summary_lines, write_layers_outputs
    from ..models import load_model

    started, clock = now_iso(), time.perf_counter()
    if args.shifts < 1:
        raise ArgumentError(f"--shifts must be at least 1 (got {args.shifts})")
    if args.batch_size < 1:
        raise ArgumentError(f"--batch-size must be at least 1 (got {args.batch_size})")
    validate_remedies(args.remedy)
    device = resolve_device(args.device)
    threads = _threads(args.threads)
    torch.set_num_threads(threads)
    loaded = load_model(
        args.model,
        checkpoint=args.checkpoint,
        random_weights=args.random_weights,
        remedies=list(args.remedy),
        device=device,
    )
    prep = loaded.preprocessing
    protocol = shift_protocol(args.protocol, prep, args.shifts, args.path, args.fourier_step)
    analysis = LayerAnalysis(
        loaded.module,
        protocol,
        batch_size=args.batch_size,
        show_layers=args.show_layer,
        model_name=loaded.spec,
    )
    if args.list_layers:
        print(analysis.map.table())
        total = analysis.map.total_stride
        print(f"total stride: {total[0] if total[0] == total[1] else total}")
        return 0
    items = _images(args)
    request = protocol.source()
    for n, item in enumerate(items, start=1):
        from ..data import ImageDecodeError, load_source

        tick = time.perf_counter()
        try:
            image = load_source(item, request, prep.interpolation, prep.crop_pct)
        except ImageDecodeError as exc:
            analysis.skip(item.image_id, str(exc))
            print(f"skipped {item.image_id}: {exc}", file=sys.stderr)
            continue
        analysis.update(prep.normalize(image), item.image_id)
        if not args.no_progress:
            print(
                f"[{n}/{len(items)}] {item.image_id}: {protocol.n_views} views, "
                f"{time.perf_counter() - tick:.1f} s",
                file=sys.stderr,
            )
    report = analysis.compute()
    if report.n_images == 0:
        raise DataError(
            f"none of the {len(items)} image(s) could be read (reasons above); "
            "check the files or try --samples"
        )
    extra = {
        "model_info": loaded.describe(),
        "run": {
            "command": "layers",
            "started": started,
            "finished": now_iso(),
            "elapsed_s": round(time.perf_counter() - clock, 3),
            "device": str(device),
            "batch_size": args.batch_size,
            "threads": threads,
            "versions": package_versions(),
        },
    }
    written = write_layers_outputs(report, args.out, figures=not args.no_figures, extra=extra)
    print("\n".join(summary_lines(report)))
    print(f"\nresults in {args.out}/ ({', '.join(p.name for p in written)})")
    return 0


def _threads(requested: int | None) -> int:
    if requested is not None:
        if requested < 1:
            raise ArgumentError(f"--threads must be at least 1 (got {requested})")
        return requested
    return 1 if (os.cpu_count() or 1) <= 2 else torch.get_num_threads()


def _images(args: argparse.Namespace):
    from ..data import discover_images

    return discover_images(args.data, samples=args.samples, labels=args.labels, limit=args.images)
