"""CPU threads: the model's forward on the run's threads, the engine's own tensor work on one.

torch splits every large enough CPU operation across its intra-op threads and waits for the
slowest at the end. That pays for a convolution, but the engine's own work between forwards
(normalising a source, slicing and pasting views, stacking them into a batch, softmax and
top-5) is a chain of small memory-bound operations: split in two, each one waits for the
other thread, and when another process holds a core that wait is a scheduler time slice
(measured on 2 shared cores under load: a ReLU over 4 x 8 x 112 x 112 values took 16 ms on
2 threads and 0.1 ms on 1). So the engine does its own work on one thread and gives the
model the run's thread count (recorded in run.json) for the forward alone.

Elementwise operations, copies, resampling and per-row softmax/top-k give the same bits on
any number of threads. An FFT does not (the `fourier` views differ in the last bit between
one and two threads): made on one thread, as the report re-creates them, a run's views no
longer depend on the machine's thread count at all.
"""

from __future__ import annotations

import contextlib

import torch

ENGINE_THREADS = 1


@contextlib.contextmanager
def torch_threads(count: int):
    """Run the block with `count` intra-op CPU threads, then restore the previous count
    (setting it costs about a microsecond)."""
    before = torch.get_num_threads()
    if count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def engine_threads(device: torch.device):
    """The context of the engine's own work on `device`: one CPU thread on a CPU run (see
    the module doc); nothing changes on a GPU run, whose tensor work is on the device."""
    if device.type != "cpu":
        return contextlib.nullcontext()
    return torch_threads(ENGINE_THREADS)
