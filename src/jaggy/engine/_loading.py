"""Decoding ahead of the model, in DataLoader worker processes.

On a CPU run the model already keeps its cores busy, so a decoding worker that competes with
it costs more than it saves: each time it takes a core, the model's other threads wait for
the preempted one at the next synchronisation point. So by default a CPU run decodes inline
when the model's threads take every core, and workers of CPU runs (when asked for, or when
there are spare cores) run at the lowest nice level (19), so that the model's threads win
every contended core. (SCHED_IDLE would yield even more, but a machine shared with other busy
processes could then starve the worker altogether, and the run with it.)

Decoding inline still puts each image's decode and resizes on the forward's critical path. So
an inline CPU run decodes the next images on one background *thread* of the same process at
the lowest priority (Linux gives each thread its own nice level): PIL releases the GIL while
it decodes and resizes, so that work fills the moments the model leaves a core idle (the
engine's own single-threaded work between forwards, the model's serial parts) instead of
adding to the wall time; what the thread produces is the same bytes as inline decoding.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.utils.data import DataLoader, Dataset

from ..data._dataset import DecodedImage, SourceDataset


def default_workers(device: torch.device, threads: int | None = None) -> int:
    """Decoding processes. `threads`: the model's CPU threads (default: torch's current count).
    On a CPU run whose model threads already take every core, none:
    decoding inline costs its own time only, while a worker (even at nice 19) makes the
    model's threads wait for each other whenever it takes a core, which costs more (measured:
    benchmarks/README.md). With cores to spare, one worker per spare core (at most 4). On a
    GPU run, several (decoding then overlaps inference for free). Under torchrun the cores
    are shared among the ranks of the machine."""
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # torchrun's ranks here
    cores = max(1, (os.cpu_count() or 1) // local_ranks)
    if device.type == "cpu":
        return max(0, min(4, cores - (threads or torch.get_num_threads())))
    return min(8, max(1, cores - 1))


def lower_priority(_worker_id: int = 0) -> None:
    """Make the calling process yield to the model's threads (best effort)."""
    try:
        os.nice(19)
    except (AttributeError, OSError):
        pass


def lower_thread_priority() -> None:
    """Make the calling thread (only it) yield to the model's threads, where the system allows
    one thread its own priority (Linux); elsewhere nothing changes."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere setpriority would lower the whole process
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


DECODE_AHEAD = 2  # images decoded ahead by the background thread


def decode_ahead(dataset: Dataset, ahead: int = DECODE_AHEAD) -> Iterator:
    """`dataset[i]` for every i, in order, each decoded on one low-priority background thread
    up to `ahead` images before it is asked for (see the module doc). Closing the iterator
    early cancels what is not started yet."""
    n = len(dataset)
    pool = ThreadPoolExecutor(
        1, thread_name_prefix="jaggy-decode", initializer=lower_thread_priority
    )
    try:
        pending: deque = deque()
        submitted = 0
        while submitted < min(n, ahead + 1):
            pending.append(pool.submit(dataset.__getitem__, submitted))
            submitted += 1
        while pending:
            decoded = pending.popleft().result()
            if submitted < n:
                pending.append(pool.submit(dataset.__getitem__, submitted))
                submitted += 1
            yield decoded
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _identity(x):
    return x


class _AsMapping(Dataset):
    """The DecodedImage of `dataset` as a dict, which the DataLoader's pinning thread knows how
    to walk, so the sources arrive in pinned memory and copy to the GPU without blocking."""

    def __init__(self, dataset: SourceDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        decoded = self.dataset[i]
        return {
            "index": i,
            "sources": decoded.sources,
            "error": decoded.error,
            "note": decoded.note,
        }


def iterate_decoded(
    dataset: SourceDataset,
    workers: int,
    *,
    pin_memory: bool = False,
    background: bool = False,
    ahead: int = 0,
) -> Iterator[DecodedImage]:
    """DecodedImage for every item, in order; `workers` processes decode ahead (0: in this
    process, on a background thread `ahead` images ahead, or inline when `ahead` is 0).
    `pin_memory`: sources arrive in pinned memory (for non-blocking copies to a GPU).
    `background`: the workers run at the lowest priority (see the module doc)."""
    if len(dataset) == 0:
        return
    if workers <= 0 and ahead > 0:
        yield from decode_ahead(dataset, ahead)
        return
    if workers <= 0:
        yield from (dataset[i] for i in range(len(dataset)))
        return
    loader = DataLoader(
        _AsMapping(dataset),
        batch_size=None,
        shuffle=False,
        num_workers=min(workers, len(dataset)),
        collate_fn=_identity,
        pin_memory=pin_memory,
        prefetch_factor=4,
        persistent_workers=False,
        worker_init_fn=lower_priority if background else None,
    )
    for entry in loader:
        item = dataset.items[entry["index"]]
        yield DecodedImage(item, entry["sources"], entry["error"], entry["note"])
