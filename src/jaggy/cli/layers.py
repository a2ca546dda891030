"""`jaggy layers MODEL [DATA]`: where shift invariance breaks, layer by layer."""

from __future__ import annotations

import argparse

from ..layers._analysis import SHIFT_PROTOCOLS
from ..layers._run import DEFAULT_SHIFTS, run_layers, stride_table
from ..protocols import PATHS
from ._common import add_data_args, add_model_args


def register(subparsers) -> None:
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
    options = dict(
        protocol=args.protocol,
        shifts=args.shifts,
        path=args.path,
        fourier_step=args.fourier_step,
        show_layers=args.show_layer,
        batch_size=args.batch_size,
        device=args.device,
        threads=args.threads,
        checkpoint=args.checkpoint,
        random_weights=args.random_weights,
        remedies=list(args.remedy),
    )
    if args.list_layers:
        smap = stride_table(args.model, **options)
        print(smap.table())
        total = smap.total_stride
        print(f"total stride: {total[0] if total[0] == total[1] else total}")
        return 0
    result = run_layers(
        args.model,
        args.data,
        samples=args.samples,
        labels=args.labels,
        images=args.images,
        out=args.out,
        figures=not args.no_figures,
        progress=not args.no_progress,
        **options,
    )
    print("\n".join(result.lines()))
    print(f"\nresults in {args.out}/ ({', '.join(p.name for p in result.files)})")
    return 0
