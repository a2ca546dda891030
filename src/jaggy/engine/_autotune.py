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
beyond the recorded batch size and memory format. Within one process, a later audit of the
same model object with the same settings reuses an earlier probe's choice (recorded with
`"reused": true`), unless it is long enough to deserve a larger budget: the probe and the
first forward of each shape are paid once per process, not once per audit.
"""

from __future__ import annotations

import time
import weakref
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


def probe_budget(run_views: int, rate: float) -> float:
    """Seconds a probe may spend on a run of `run_views` views at `rate` views/s (the best
    measured so far; 0: nothing measured yet)."""
    if rate <= 0:
        return MAX_BUDGET_SECONDS
    estimate = run_views / rate
    return min(MAX_BUDGET_SECONDS, max(MIN_BUDGET_SECONDS, BUDGET_FRACTION * estimate))


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
        return probe_budget(self.run_views, self.best_rate())

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
    chunk_views = setup.views_per_image() * min(setup.config.chunk_images, len(setup.items))
    sizes = candidate_batch_sizes(device, chunk_views)
    run_views = max(1, setup.views_per_image() * len(setup.items) // setup.ranks.world_size)
    key = _process_key(setup, memory_formats, sizes)
    earlier = _PROCESS_PROBES.get(key)
    if earlier is not None and earlier.reusable(setup, run_views):
        return {**earlier.choice, "reused": True, "seconds": 0.0}
    pool, pool_source = probe_views(setup)
    first = START_BATCH.get(device.type, 4)
    start = max([i for i, b in enumerate(sizes) if b <= first], default=0)
    probe = _Probe(setup, pool, run_views)
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
    choice = {
        "batch_size": batch_size,
        "memory_format": memory_format,
        "probes": probe.results,
        "views": {"count": len(pool), "from": pool_source},
        "dtype": setup.config.dtype,
        "threads": torch.get_num_threads(),
        "budget_seconds": round(probe.budget(), 3),
        "seconds": round(time.perf_counter() - probe.started, 3),
    }
    if probe.rates:
        _PROCESS_PROBES[key] = _EarlierProbe(
            setup.loaded.module, choice, probe.best_rate(), probe.budget()
        )
    return choice


class _EarlierProbe:
    """A probe made earlier in this process. Its choice is reused by a later audit of the
    same model object with the same settings (`_process_key`), unless that audit is long
    enough to deserve a larger budget than the earlier probe had: the probe, and the first
    forwards of each shape it builds kernels for, are then paid once per process rather than
    once per audit (a notebook or a benchmark that audits many folders)."""

    def __init__(self, module: torch.nn.Module, choice: dict, best_rate: float, budget: float):
        self.module = weakref.ref(module)  # an id alone could be reused by another model
        self.choice = choice
        self.best_rate = best_rate
        self.budget = budget  # unrounded: the choice records it rounded

    def reusable(self, setup: AuditSetup, run_views: int) -> bool:
        if self.module() is not setup.loaded.module:
            return False
        return probe_budget(run_views, self.best_rate) <= self.budget


_PROCESS_PROBES: dict[tuple, _EarlierProbe] = {}


def _process_key(setup: AuditSetup, memory_formats: list[str], sizes: list[int]) -> tuple:
    """Everything the probe's choice depends on besides the model object itself."""
    return (
        id(setup.loaded.module),
        str(setup.device),
        setup.config.dtype,
        torch.get_num_threads(),
        setup.loaded.preprocessing.input_size,
        tuple(memory_formats),
        tuple(sizes),
        repr(setup.measure),
        setup.headless,
    )


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
