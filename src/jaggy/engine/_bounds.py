"""Does the work asked for fit in memory? Checked before any image is decoded, so that a typo
such as `--steps 100000` is a message, not an allocation of tens of gigabytes that fails on
every image."""

from __future__ import annotations

import os

import torch

from ..errors import ArgumentError
from ..protocols import Protocol

# Bytes per pixel of one protocol source: uint8 from the decoder (PIL keeps 4 per pixel, numpy
# and torch 3 each) on the host; on the device the uint8 copy (3) and the normalised float32 (12).
HOST_BYTES_PER_SOURCE_PIXEL = 10
DEVICE_BYTES_PER_SOURCE_PIXEL = 15
ROW_BYTES = 160  # one prediction row held until its chunk is committed (ids, top-5, floats)
MIN_VIEW_BLOCK = 32  # the engine makes views in blocks of at least this many
SHARE = 0.5  # of the memory available now; the rest is the model's and the system's


def available_memory(device: torch.device) -> int | None:
    """Bytes available now on `device` (the host for 'cpu'); None when it cannot be told."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gigabytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_work_fits(
    protocols: list[Protocol],
    device: torch.device,
    *,
    batch_size: int,
    images_held: int = 1,
    argument: str = "--steps",
    available: dict[str, int | None] | None = None,
) -> None:
    """Refuse a run whose largest source image, view block, or chunk of rows needs more than
    half the memory available. `images_held`: images whose rows are kept at once (a chunk);
    `available`: {'host': bytes, 'device': bytes}, measured when not given."""
    if available is None:
        host = available_memory(torch.device("cpu"))
        available = {"host": host, "device": host if device.type == "cpu" else None}
        if device.type == "cuda":
            available["device"] = available_memory(device)
    views = sum(p.n_views for p in protocols)
    rows = images_held * views * ROW_BYTES
    for protocol in protocols:
        side = protocol.source().side
        r = protocol.input_size
        block = max(batch_size, MIN_VIEW_BLOCK) * 3 * r * r * 4 * 2  # views, then the batch
        host_need = HOST_BYTES_PER_SOURCE_PIXEL * side * side + rows
        device_need = DEVICE_BYTES_PER_SOURCE_PIXEL * side * side + block
        if device.type == "cpu":
            needs = {"host": host_need + device_need}
        else:
            needs = {"host": host_need, "device": device_need}
        for where, need in needs.items():
            have = available.get(where)
            if have is None or need <= SHARE * have:
                continue
            place = "this machine" if where == "host" else str(device)
            source = side * side * DEVICE_BYTES_PER_SOURCE_PIXEL
            parts = {
                "source": (source, f"a {side} px source image per image", f"fewer {argument}"),
                "rows": (
                    rows if where == "host" or device.type == "cpu" else 0,
                    f"{views:,} views per image, {images_held} image(s) per chunk",
                    f"fewer {argument} or a smaller --chunk-images",
                ),
                "batch": (
                    block if where == "device" or device.type == "cpu" else 0,
                    f"batches of {batch_size:,} views",
                    "a smaller --batch-size",
                ),
            }
            _, cause, remedy = max(parts.values(), key=lambda part: part[0])
            what = (
                f"--batch-size {batch_size:,}"
                if remedy == "a smaller --batch-size"
                else f"{argument} {protocol.options.steps - _offset(argument)}"
            )
            raise ArgumentError(
                f"{protocol.key} with {what} needs about {_gigabytes(need)} of memory ({cause}), "
                f"but {place} has {_gigabytes(have)} available; use {remedy}"
            )


def _offset(argument: str) -> int:
    """`--shifts T` means T + 1 views along the path."""
    return 1 if argument == "--shifts" else 0
