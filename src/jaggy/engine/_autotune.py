"""`--batch-size auto`: time a few batch sizes and memory formats on real views, keep the fastest.

The probe runs the run's own model, dtype and device on views of the first readable images
(every protocol contributes), in eager mode. For each memory format it doubles the batch size
from the smallest candidate and stops once throughput falls clearly below the best seen for
that format (throughput over batch size rises, peaks, then falls as activations leave the
caches). Each configuration gets one untimed call (it builds kernels/plans for the new shape)
and then timed calls; the fastest timed call counts, because other processes on the machine
can only slow a call down. The choice and every timing go into run.json and manifest.json; a
resumed run or another rank reuses the recorded choice instead of probing again, so results
never depend on timing noise beyond the recorded batch size and memory format.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from ._forward import Forward, is_out_of_memory, set_memory_format

if TYPE_CHECKING:
    from ._runner import AuditSetup

CPU_BATCH_SIZES = (1, 2, 4, 8, 16, 32)
GPU_BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024)
PAST_PEAK = 0.85  # stop growing a format's batch once throughput < this x its best
POOL_VIEWS = 64  # real views kept for probing; larger batches repeat them
MIN_TIMED_SECONDS = {"cpu": 0.05, "cuda": 0.05}
LONG_CALL_SECONDS = 0.4
MAX_CALL_SECONDS = 2.0  # a configuration slower than this per call ends the growth
BUDGET_SECONDS = 15.0  # no new configuration is started after this


def candidate_batch_sizes(device: torch.device, max_views: int) -> list[int]:
    """Batch sizes to probe on `device`, none larger than `max_views` (the views of one
    chunk: batches never span two chunks, so a larger batch could never fill)."""
    sizes = GPU_BATCH_SIZES if device.type == "cuda" else CPU_BATCH_SIZES
    kept = [b for b in sizes if b <= max_views]
    return kept or [max(1, max_views)]


def choose_configuration(setup: AuditSetup, memory_formats: list[str]) -> dict:
    """Probe and return {'batch_size', 'memory_format', 'probes', 'seconds', 'views'}.

    Args:
        setup: the resolved run (model on its device, protocols, images).
        memory_formats: formats to try ('contiguous', 'channels_last').
    """
    started = time.perf_counter()
    device = setup.device
    pool, pool_source = probe_views(setup)
    chunk_views = setup.views_per_image() * min(setup.config.chunk_images, len(setup.items))
    sizes = candidate_batch_sizes(device, chunk_views)
    probes: list[dict] = []
    module = setup.loaded.module
    for memory_format in memory_formats:
        forward = Forward(module, device, setup.config.dtype, memory_format)
        best = 0.0
        for batch_size in sizes:
            if time.perf_counter() - started > BUDGET_SECONDS:
                break
            batch = pool[torch.arange(batch_size, device=pool.device) % len(pool)]
            probe = {"batch_size": batch_size, "memory_format": memory_format}
            try:
                per_call = _time_calls(forward, batch, MIN_TIMED_SECONDS.get(device.type, 0.1))
            except RuntimeError as exc:
                if not is_out_of_memory(exc):
                    raise
                probes.append({**probe, "error": "out of memory"})
                _free_cached_memory(device)
                break
            rate = batch_size / per_call
            probes.append({**probe, "views_per_s": round(rate, 2), "seconds_per_call": per_call})
            best = max(best, rate)
            if rate < PAST_PEAK * best or per_call > MAX_CALL_SECONDS:
                break
    set_memory_format(module, "contiguous")
    timed = [p for p in probes if "views_per_s" in p]
    if not timed:  # even the smallest batch failed: let the run's own back-off handle it
        choice = {"batch_size": sizes[0], "memory_format": memory_formats[0]}
    else:
        fastest = max(timed, key=lambda p: p["views_per_s"])
        choice = {"batch_size": fastest["batch_size"], "memory_format": fastest["memory_format"]}
    return {
        **choice,
        "probes": probes,
        "views": {"count": len(pool), "from": pool_source},
        "dtype": setup.config.dtype,
        "threads": torch.get_num_threads(),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _time_calls(forward: Forward, batch: torch.Tensor, min_seconds: float) -> float:
    """Seconds of the fastest timed forward call of `batch` (after one untimed call)."""
    _synchronize(forward.device)
    forward.logits(batch)
    _synchronize(forward.device)
    times: list[float] = []
    # Two timed calls at least (the faster one counts), more for fast calls, one for a call
    # that alone lasts LONG_CALL_SECONDS (its noise is a small fraction of it).
    while not times or (
        (len(times) < 2 or sum(times) < min_seconds)
        and sum(times) < LONG_CALL_SECONDS
        and len(times) < 50
    ):
        start = time.perf_counter()
        forward.logits(batch)
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
    from ..data import SourceDataset

    prep = setup.loaded.preprocessing
    dataset = SourceDataset(
        setup.items[:max_tries],
        [p.source() for p in setup.protocols],
        prep.interpolation,
        prep.crop_pct,
    )
    r = prep.input_size
    for i in range(len(dataset)):
        decoded = dataset[i]
        if decoded.error is not None:
            continue
        per_protocol = max(1, POOL_VIEWS // len(setup.protocols))
        views = []
        for protocol in setup.protocols:
            source = prep.normalize(decoded.sources[protocol.source().key].to(setup.device))
            take = min(protocol.n_views, per_protocol)
            views.append(protocol.make_views(source, range(take)))
        return torch.cat(views)[:POOL_VIEWS], decoded.item.image_id
    generator = torch.Generator().manual_seed(0)
    pool = torch.randn(POOL_VIEWS, 3, r, r, generator=generator).to(setup.device)
    return pool, "random (none of the first images could be read)"
