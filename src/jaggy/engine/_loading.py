"""Decoding ahead of the model, in DataLoader worker processes.

On a CPU run the model already keeps its cores busy, so a decoding worker that competes with
it costs more than it saves: each time it takes a core, the model's other threads wait for
the preempted one at the next synchronisation point. So by default a CPU run decodes inline
when the model's threads take every core, and workers of CPU runs (when asked for, or when
there are spare cores) run at the lowest nice level (19), so that the model's threads win
every contended core. (SCHED_IDLE would yield even more, but a machine shared with other busy
processes could then starve the worker altogether, and the run with it.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

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
    dataset: SourceDataset, workers: int, *, pin_memory: bool = False, background: bool = False
) -> Iterator[DecodedImage]:
    """DecodedImage for every item, in order; `workers` processes decode ahead (0: inline).
    `pin_memory`: sources arrive in pinned memory (for non-blocking copies to a GPU).
    `background`: the workers run at the lowest priority (see the module doc)."""
    if workers <= 0 or len(dataset) == 0:
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
