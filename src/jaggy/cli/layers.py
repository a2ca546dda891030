"""`jaggy layers MODEL [DATA]`: where shift invariance breaks, layer by layer."""

from __future__ import annotations

import argparse

from ..layers._analysis import SHIFT_PROTOCOLS
from ..layers._run import DEFAULT_SHIFTS, LayerSettings, run_layers, stride_table
from ._common import (
    BATCH_SIZE,
    DATA_OPTIONS,
    DEVICE,
    FOURIER_STEP,
    MODEL,
    MODEL_CHANGES,
    NO_FIGURES,
    NO_PROGRESS,
    PATH,
    THREADS,
    output_folder,
)
from ._options import call_kwargs, command, option

# The fields of LayerSettings: how the images are shifted and where the model runs.
SHIFT_OPTIONS = (
    option(
        "--protocol",
        default="crop",
        choices=list(SHIFT_PROTOCOLS),
        help="how images are shifted: crop (windows 1 px apart of the image resized to "
        "R + T + 1, the study's Crop protocol; default), circular (torch.roll, 1 px steps: exact "
        "equivariance tests, but a zero-padded model sees the wrap-around seam) or fourier "
        "(band-limited sub-pixel circular shifts)",
    ),
    option(
        "--shifts",
        type=int,
        default=DEFAULT_SHIFTS,
        metavar="T",
        help=f"largest shift in steps: views 0..T (default {DEFAULT_SHIFTS}; a multiple of the "
        "total stride shows its period)",
    ),
    PATH.but(help="shift path"),
    FOURIER_STEP.but(metavar="PX", help="px per step of the fourier protocol (default 0.25)"),
    option(
        "--show-layer",
        action="append",
        metavar="NAME",
        help="layer for the feature-map and error-versus-shift figures (repeatable; default: the "
        "last layer at each cumulative stride)",
        to="show_layers",
    ),
    BATCH_SIZE.but(
        type=int,
        default=8,
        metavar=None,
        help="shifted views per forward pass (default 8)",
        convert=None,
    ),
    DEVICE.but(help="cpu, cuda, cuda:N or auto"),
    THREADS.but(
        help="CPU threads for torch (default: 1 on a machine with at most 2 cores, where the "
        "many small per-layer reductions lose more to thread synchronisation than they gain; "
        "else torch's default)"
    ),
)
OUTPUT_OPTIONS = (
    output_folder("jaggy-layers"),
    NO_FIGURES.but(help="skip the PNG figures"),
    option(
        "--list-layers",
        action="store_true",
        help="print the stride map and exit (no images needed)",
        to=None,
    ),
    NO_PROGRESS.but(help="no per-image lines"),
)
OPTIONS = (MODEL, *MODEL_CHANGES, *DATA_OPTIONS, *SHIFT_OPTIONS, *OUTPUT_OPTIONS)


@command("layers", OPTIONS)
def run(args: argparse.Namespace) -> int:
    """where invariance breaks: stride map, per-layer equivariance, aliasing energy

    Shift each image by 0..T steps along a path and compare every layer's feature map with the
    unshifted one moved by the same amount (exact where the shift is a multiple of the layer's
    cumulative stride, band-limited interpolation otherwise); measure the aliasing energy at
    every subsampling layer. Writes layers.json, layers.parquet and figures to --out."""
    settings = LayerSettings(**call_kwargs(args, MODEL_CHANGES + SHIFT_OPTIONS))
    if args.list_layers:
        smap = stride_table(args.model, settings)
        print(smap.table())
        total = smap.total_stride
        print(f"total stride: {total[0] if total[0] == total[1] else total}")
        return 0
    kwargs = call_kwargs(args, DATA_OPTIONS + OUTPUT_OPTIONS)
    result = run_layers(args.model, settings=settings, progress=not args.no_progress, **kwargs)
    print("\n".join(result.lines()))
    print(f"\nresults in {args.out}/ ({', '.join(p.name for p in result.files)})")
    return 0
