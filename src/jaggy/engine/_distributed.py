"""torchrun support: which rank am I, and collectives that are no-ops in a single process.

Ranks exchange only small Python objects (the run record, per-rank reports), so the process
group always uses gloo, on CPU and GPU runs alike; results travel through the shared output
folder. torchrun's rendezvous variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) are all that is read, so multi-node runs need nothing beyond torchrun's own
`--nnodes/--node-rank/--rdzv-*` options and an --out folder every node can see.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch.distributed as dist

from ..errors import JaggyError

T = TypeVar("T")

# Ranks wait for each other at the start (rank 0 probes the batch size) and at the end (the
# slowest rank's last chunk); both waits are bounded by a chunk or a probe, not by the run.
GROUP_TIMEOUT = timedelta(hours=6)


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast_object(self, value: T) -> T:
        """Rank 0's value, on every rank."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather_object(self, value: T) -> list[T]:
        """Every rank's value, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def on_main(self, work: Callable[[], T]) -> T:
        """Run `work` on rank 0 only and hand its result to every rank. A JaggyError raised
        there is raised on every rank, so no rank waits forever for a result that never
        comes (and every rank exits with the same message)."""
        result, error = None, None
        if self.is_main:
            try:
                result = work()
            except JaggyError as exc:
                error = exc
        if self.distributed:
            result, error = self.broadcast_object((result, error))
        if error is not None:
            raise error
        return result

    def shutdown(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def init_ranks() -> Ranks:
    """Read torchrun's environment and join the process group (gloo, see the module doc)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=GROUP_TIMEOUT)
        owns = True
    return Ranks(rank, world, local, owns)


def split_chunks(remaining: list[int], ranks: Ranks) -> list[int]:
    """This rank's share of the chunks still to compute: every world_size-th one, starting at
    its rank. On a fresh run that is chunk c on rank c % world_size; on a resumed run the
    remaining chunks are dealt out again, so ranks stay balanced whatever was done before."""
    return remaining[ranks.rank :: ranks.world_size]
