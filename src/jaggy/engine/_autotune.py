"""`--batch-size auto`: time a few batch sizes and memory formats on real views, keep the fastest.

The probe runs the run's own model, dtype and device on views of the first readable image
(every protocol contributes), in eager mode. It starts at a batch size that is usually near
the best (4 on a CPU, 64 on a GPU), in every memory format, then climbs: doubling the batch
while throughput improves, else halving it while that improves (throughput over batch size
rises, peaks, then falls as activations leave the caches). Each configuration gets one
untimed call (it builds kernels/plans for the new shape) and then timed calls; the fastest
timed call counts, because other processes on the machine can only slow a call down.

The probe costs time the run does not spend on its own views, so it has a budget: 1% of the
run's estimated duration (from the rates measured so far), at least 0.3 s and at most 20 s. A
short run probes little; an ImageNet-sized run probes until the climb ends.

The choice and every timing go into run.json and manifest.json; a resumed run or another rank
reuses the recorded choice instead of probing again, so results never depend on timing noise
beyond the recorded batch size and memory format.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from ._forward import Forward, is_out_of_memory, set_memory_format

if TYPE_CHECKING:
    from ._setup import AuditSetup

CPU_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
GPU_BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024)
START_BATCH = {"cpu": 4, "cuda": 64}
POOL_VIEWS = 64  # real views kept for probing; larger batches repeat them
MIN_TIMED_SECONDS = 0.05  # timed calls last at least this long together ...
LONG_CALL_SECONDS = 0.25  # ... and one timed call is enough when it lasts this long
BUDGET_FRACTION = 0.01
MIN_BUDGET_SECONDS = 0.3
MAX_BUDGET_SECONDS = 20.0


def candidate_batch_sizes(device: torch.device, max_views: int) -> list[int]:
    """Batch sizes to probe on `device`, none larger than `max_views` (the views of one
    chunk: batches never span two chunks, so a larger batch could never fill)."""
    sizes = GPU_BATCH_SIZES if device.type == "cuda" else CPU_BATCH_SIZES
    kept = [b for b in sizes if b <= max_views]
    return kept or [max(1, max_views)]


class _Probe:
    """Times configurations within a budget and remembers every result."""

    def __init__(self, setup: AuditSetup, pool: torch.Tensor, run_views: int):
        self.setup = setup
        self.pool = pool
        self.run_views = run_views
        self.started = time.perf_counter()
        self.results: list[dict] = []
        self.rates: dict[tuple[int, str], float] = {}
        self.out_of_memory: set[tuple[int, str]] = set()

    def best_rate(self) -> float:
        return max(self.rates.values(), default=0.0)

    def budget(self) -> float:
        if not self.rates:
            return MAX_BUDGET_SECONDS
        estimate = self.run_views / self.best_rate()
        return min(MAX_BUDGET_SECONDS, max(MIN_BUDGET_SECONDS, BUDGET_FRACTION * estimate))

    def affordable(self, batch_size: int, memory_format: str) -> bool:
        """Whether (about three calls of) this configuration fit in what is left."""
        rate = self.rates.get((batch_size // 2, memory_format)) or self.best_rate()
        cost = 3 * batch_size / rate if rate else 0.0
        return time.perf_counter() - self.started + cost <= self.budget()

    def rate(self, batch_size: int, memory_format: str) -> float | None:
        """Views/s of the configuration (None when it runs out of memory)."""
        key = (batch_size, memory_format)
        if key in self.rates or key in self.out_of_memory:
            return self.rates.get(key)
        device = self.setup.device
        forward = Forward(
            self.setup.loaded.module,
            device,
            self.setup.config.dtype,
            memory_format,
            measure=self.setup.measure,
            headless=self.setup.headless,
        )
        batch = self.pool[torch.arange(batch_size, device=self.pool.device) % len(self.pool)]
        entry = {"batch_size": batch_size, "memory_format": memory_format}
        try:
            per_call = _time_calls(forward, batch)
        except RuntimeError as exc:
            forward.close()
            if not is_out_of_memory(exc):
                raise
            del batch
            _free_cached_memory(device)
            self.out_of_memory.add(key)
            self.results.append({**entry, "error": "out of memory"})
            return None
        forward.close()  # the probe's feature hooks come off the module again
        self.rates[key] = batch_size / per_call
        self.results.append(
            {**entry, "views_per_s": round(self.rates[key], 2), "seconds_per_call": per_call}
        )
        return self.rates[key]

    def climb(self, sizes: list[int], start: int, memory_format: str) -> None:
        """From sizes[start]: up while throughput improves, else down while it improves."""
        best = self.rate(sizes[start], memory_format)
        if best is None:  # out of memory: smaller batches only
            for i in range(start - 1, -1, -1):
                if self.rate(sizes[i], memory_format) is not None:
                    best, start = self.rates[(sizes[i], memory_format)], i
                    break
            else:
                return
        for step in (1, -1):
            i, moved = start + step, False
            while 0 <= i < len(sizes) and self.affordable(sizes[i], memory_format):
                rate = self.rate(sizes[i], memory_format)
                if rate is None or rate <= best:
                    break
                best, moved = rate, True
                i += step
            if moved:
                return


def choose_configuration(setup: AuditSetup, memory_formats: list[str]) -> dict:
    """Probe and return {'batch_size', 'memory_format', 'probes', 'seconds', 'views', ...}.

    Args:
        setup: the resolved run (model on its device, protocols, images).
        memory_formats: formats to try ('contiguous', 'channels_last').
    """
    device = setup.device
    pool, pool_source = probe_views(setup)
    chunk_views = setup.views_per_image() * min(setup.config.chunk_images, len(setup.items))
    sizes = candidate_batch_sizes(device, chunk_views)
    first = START_BATCH.get(device.type, 4)
    start = max([i for i, b in enumerate(sizes) if b <= first], default=0)
    run_views = setup.views_per_image() * len(setup.items) // setup.ranks.world_size
    probe = _Probe(setup, pool, max(1, run_views))
    for memory_format in memory_formats:  # every format at the starting size first
        probe.rate(sizes[start], memory_format)
    # The most promising format climbs first: a short budget is best spent there.
    ranked = sorted(memory_formats, key=lambda f: -(probe.rates.get((sizes[start], f)) or 0))
    for memory_format in ranked:
        probe.climb(sizes, start, memory_format)
    set_memory_format(setup.loaded.module, "contiguous")
    if probe.rates:
        batch_size, memory_format = max(probe.rates, key=probe.rates.get)
    else:  # even the smallest batch failed: the run's own back-off takes over
        batch_size, memory_format = sizes[0], memory_formats[0]
    return {
        "batch_size": batch_size,
        "memory_format": memory_format,
        "probes": probe.results,
        "views": {"count": len(pool), "from": pool_source},
        "dtype": setup.config.dtype,
        "threads": torch.get_num_threads(),
        "budget_seconds": round(probe.budget(), 3),
        "seconds": round(time.perf_counter() - probe.started, 3),
    }


def _time_calls(forward: Forward, batch: torch.Tensor) -> float:
    """Seconds of the fastest timed forward call of `batch` (after one untimed call)."""
    _synchronize(forward.device)
    forward.outputs(batch)
    _synchronize(forward.device)
    times: list[float] = []
    # Two timed calls at least (the faster counts), more for fast calls, one for a call that
    # alone lasts LONG_CALL_SECONDS (noise is then a small part of it).
    while not times or (
        (len(times) < 2 or sum(times) < MIN_TIMED_SECONDS)
        and sum(times) < LONG_CALL_SECONDS
        and len(times) < 50
    ):
        start = time.perf_counter()
        forward.outputs(batch)
        _synchronize(forward.device)
        times.append(time.perf_counter() - start)
    return min(times)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _free_cached_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def probe_views(setup: AuditSetup, max_tries: int = 8) -> tuple[torch.Tensor, str]:
    """Up to POOL_VIEWS real views (normalised, on the device) of the first readable image,
    taken from every protocol in turn; random views when none of the first `max_tries`
    images can be read (the probe only needs the shapes then)."""
    prep = setup.loaded.preprocessing
    dataset = setup.dataset(setup.items[:max_tries])
    r = prep.input_size
    for i in range(len(dataset)):
        decoded = dataset[i]
        if decoded.error is not None:
            continue
        per_protocol = max(1, POOL_VIEWS // len(setup.protocols))
        views = []
        for protocol in setup.protocols:
            source = prep.normalize(decoded.sources[protocol.source().key].to(setup.device))
            take = min(len(protocol.view_params_for(source)), per_protocol)
            views.append(protocol.make_views(source, range(take)))
        return torch.cat(views)[:POOL_VIEWS], decoded.item.image_id
    generator = torch.Generator().manual_seed(0)
    pool = torch.randn(POOL_VIEWS, 3, r, r, generator=generator).to(setup.device)
    return pool, "random (none of the first images could be read)"
