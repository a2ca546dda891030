"""`--batch-size auto`: time a few batch sizes and memory formats (and, under `--graph auto`,
the frozen graph of `_graph`) on the run's own first batches, keep the fastest.

The probe times the run's own model, dtype and device, in eager mode, on the audit's own
first batches: each tried configuration computes real views of the run, whose rows are kept,
so the probe costs only the difference between the tried configurations and the chosen one
(`extra_seconds` in its record), not the time of the views it ran. It starts at a batch size
that is usually near the best (4 on a CPU, 64 on a GPU), in every memory format, then climbs:
doubling the batch while throughput improves, else halving it while that improves
(throughput over batch size rises, peaks, then falls as activations leave the caches). Each
configuration's first call is untimed (it builds kernels/plans for the new shape), then timed
calls follow; the fastest timed call counts, because other processes on the machine can only
slow a call down. A batch cut short by the end of a chunk runs but is not a measurement.

The frozen graph is tried last, at the best eager configuration, and only when the run's
remaining views are enough for it to pay for its build (see EXPECTED_GRAPH_SPEEDUP): its
first batch builds it and checks it against eager on that batch (refused: the batch runs
eagerly and the reason is recorded), then timed calls follow; it is chosen when it wins with
the build counted. The probe's cost (`extra_seconds`) includes the build.

The probe has a budget of wall time: 1% of the run's estimated duration (from the rates
measured so far), at least 0.3 s and at most 20 s. A short run probes little; an
ImageNet-sized run probes until the climb ends. A run whose views end first keeps the best
configuration measured so far (`"incomplete": true`).

The choice, every timing and the batches each chunk ran during the probe go into run.json
(before any chunk the probe touched is committed) and manifest.json. A chunk's rows depend on
the configuration of each of its batches, so a resumed run recomputes such a chunk with the
recorded batches (`schedule`), and another rank or session uses the recorded choice: results
never depend on timing noise beyond what is recorded. Views computed at different
configurations differ only at float tolerance (as between any two configurations).

A compiled run (`--compile`) probes on copies of its first views instead (every tried shape
would be compiled) and throws their outputs away (`"on_run_views": false`). Within one
process, a later audit of the same model object with the same settings reuses an earlier
probe's choice (recorded with `"reused": true`), unless it is long enough to deserve a larger
budget: the probe and the first forward of each shape are paid once per process, not once per
audit.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Generator
from typing import TYPE_CHECKING

import torch

from ._forward import Forward, is_out_of_memory, set_memory_format, synchronize

if TYPE_CHECKING:
    from ._setup import AuditSetup

CPU_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
GPU_BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024)
START_BATCH = {"cpu": 4, "cuda": 64}
POOL_VIEWS = 64  # views copied for a probe that throws its outputs away
MIN_TIMED_SECONDS = 0.05  # timed calls last at least this long together ...
LONG_CALL_SECONDS = 0.25  # ... and one timed call is enough when it lasts this long
MAX_TIMED_CALLS = 50
BUDGET_FRACTION = 0.01
MIN_BUDGET_SECONDS = 0.3
MAX_BUDGET_SECONDS = 20.0
PENDING = "pending"  # run.json's autotune status until the probe has chosen

# The frozen graph (`--graph`, see `_graph`) is tried only when it can pay for its build: when
# the run's remaining views, at the best eager rate, would take long enough that a gain of
# EXPECTED_GRAPH_SPEEDUP saves more than the build is expected to cost (the last build this
# process measured, else DEFAULT_BUILD_SECONDS: lite0's trace + freeze + optimisation took
# 1.0 s the first time in a process on a loaded 2-core machine, its check a few calls more).
# 1.3: the low end of lite0's measured gain on a CPU (1.35-1.45x at batch 4, channels-last).
EXPECTED_GRAPH_SPEEDUP = 1.3
DEFAULT_BUILD_SECONDS = 1.5

# One forward call to make: (batch size, memory format, graph, timed). The search is sent
# back the call's seconds, or None when it failed (out of memory, or the graph was refused).
Step = tuple[int, str, str, bool]
Config = tuple[int, str, str]  # batch size, memory format, graph


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


class ProbeSearch:
    """Which configurations to time, in which order, within a budget (see the module doc).
    `steps()` yields the forward calls to make; whoever makes them sends back their seconds."""

    def __init__(
        self,
        sizes: list[int],
        formats: list[str],
        start_batch: int,
        run_views: int,
        graphs: list[str] | None = None,
        force_graph: bool = False,
        build_estimate: float = DEFAULT_BUILD_SECONDS,
    ):
        self.sizes = sizes
        self.formats = formats
        self.start = max([i for i, b in enumerate(sizes) if b <= start_batch], default=0)
        self.run_views = run_views
        self.graphs = list(graphs or ["eager"])
        self.force_graph = force_graph  # --graph frozen: chosen whenever its check passes
        self.build_estimate = build_estimate
        self.views_done = 0  # views of the run computed so far (told by whoever runs them)
        self.started = time.perf_counter()
        self.results: list[dict] = []
        self.rates: dict[Config, float] = {}
        self.out_of_memory: set[Config] = set()  # failed configurations (any reason)
        self.timing: dict[Config, list[float]] = {}  # timed calls so far
        self.failure: str | None = None  # why the next failure is sent (default: memory)
        self.graph_record: dict | None = None  # the frozen graph's trial, for the record
        self.graph_refused = False  # its check failed: eager from then on

    @property
    def main_graph(self) -> str:
        """The graph the batch sizes and formats are searched with: the frozen one when it
        is asked for (`force_graph`) and not refused, else eager (the frozen graph is then
        tried at the end, `_try_graph`)."""
        return "frozen" if self.force_graph and not self.graph_refused else "eager"

    def best_rate(self) -> float:
        return max(self.rates.values(), default=0.0)

    def _best(self, graph: str = "eager") -> Config | None:
        rates = {k: r for k, r in self.rates.items() if k[2] == graph}
        return max(rates, key=rates.get) if rates else None

    def budget(self) -> float:
        return probe_budget(self.run_views, self.best_rate())

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def affordable(self, batch_size: int, memory_format: str) -> bool:
        """Whether (about three calls of) this configuration fit in what is left."""
        rate = self._rate_at(batch_size // 2, memory_format) or self.best_rate()
        cost = 3 * batch_size / rate if rate else 0.0
        return self.elapsed() + cost <= self.budget()

    def choice(self) -> Config:
        """The fastest eager configuration measured, or the frozen graph when it won
        (`_graph_wins`); without any, the smallest batch after out of memory (the run's own
        back-off takes over), else the starting configuration."""
        if self.main_graph == "frozen" and self._best("frozen"):
            return self._best("frozen")
        best, frozen = self._best(), self._best("frozen")
        if best is not None:
            if frozen is not None and self._graph_wins(best, frozen):
                return frozen
            return best
        if self.rates:
            return max(self.rates, key=self.rates.get)
        if self.out_of_memory:
            return self.sizes[0], self.formats[0], "eager"
        return self.sizes[self.start], self.formats[0], "eager"

    def _graph_wins(self, eager: Config, frozen: Config) -> bool:
        """Whether the frozen graph, its build included, beats eager over the views that
        were left when it was tried. Requiring it to pay for its build, not only to be
        faster, is a margin against choosing on timing noise."""
        if self.force_graph:
            return True
        trial = self.graph_record or {}
        remaining = trial.get("remaining_views", 0)
        eager_rate, frozen_rate = self.rates[eager], self.rates[frozen]
        # the checks' seconds: the build, and the eager and frozen calls that compare them
        build = sum(c.get("seconds", 0.0) for c in trial.get("checks", []))
        trial["build_cost_seconds"] = round(build, 3)
        return build + remaining / frozen_rate < remaining / eager_rate

    def steps(self) -> Generator[Step, float | None, None]:
        start = self.sizes[self.start]
        for memory_format in self.formats:  # every format at the starting size first
            yield from self._rate(start, memory_format)
        # The most promising format climbs first: a short budget is best spent there.
        ranked = sorted(self.formats, key=lambda f: -self._rate_at(start, f))
        for memory_format in ranked:
            yield from self._climb(memory_format)
        if "frozen" in self.graphs and not self.force_graph:
            yield from self._try_graph()

    def _rate_at(self, batch_size: int, memory_format: str) -> float:
        return max(
            (r for k, r in self.rates.items() if k[:2] == (batch_size, memory_format)),
            default=0.0,
        )

    def _try_graph(self):
        """The frozen graph at the best eager configuration, when it can pay for its build
        (see EXPECTED_GRAPH_SPEEDUP) or is asked for (`force_graph`)."""
        best = self._best()
        if best is None:
            return
        remaining = max(0, self.run_views - self.views_done)
        eager_seconds = remaining / self.rates[best]
        saving = eager_seconds * (1 - 1 / EXPECTED_GRAPH_SPEEDUP)
        self.graph_record = {
            "remaining_views": remaining,
            "expected_saving_seconds": round(saving, 3),
            "expected_build_seconds": round(self.build_estimate, 3),
        }
        if not self.force_graph and saving <= self.build_estimate:
            self.graph_record["tried"] = False
            return
        self.graph_record["tried"] = True
        # one trace serves every batch size: the frozen graph climbs from there too, within
        # the probe's budget
        yield from self._climb(best[1], "frozen", self.sizes.index(best[0]))

    def _rate(self, batch_size: int, memory_format: str, graph: str | None = None):
        """Views/s of the configuration (None when it fails: out of memory, or the frozen
        graph refused by its check). `graph`: by default the one searched with."""
        graph = graph or self.main_graph
        key = (batch_size, memory_format, graph)
        if key in self.rates or key in self.out_of_memory:
            return self.rates.get(key)
        if graph == "frozen" and self.graph_refused:  # its check failed: not again
            return None
        entry = {"batch_size": batch_size, "memory_format": memory_format, "graph": graph}
        first = yield (batch_size, memory_format, graph, False)  # untimed: builds kernels
        if first is None:
            return self._failed(key, entry)
        times = self.timing[key] = []
        # Two timed calls at least (the faster counts), more for fast calls, one for a call
        # that alone lasts LONG_CALL_SECONDS (noise is then a small part of it).
        while not times or (
            (len(times) < 2 or sum(times) < MIN_TIMED_SECONDS)
            and sum(times) < LONG_CALL_SECONDS
            and len(times) < MAX_TIMED_CALLS
        ):
            seconds = yield (batch_size, memory_format, graph, True)
            if seconds is None:
                return self._failed(key, entry)
            times.append(seconds)
        self._measured(key, entry)
        return self.rates[key]

    def _measured(self, key: Config, entry: dict) -> None:
        times = self.timing.pop(key)
        per_call = min(times)
        self.rates[key] = key[0] / per_call
        self.results.append(
            {
                **entry,
                "views_per_s": round(self.rates[key], 2),
                "seconds_per_call": per_call,
                "timed_calls": len(times),
            }
        )

    def stop(self) -> None:
        """The views ended: a configuration with timed calls so far counts with those."""
        for key in [k for k, times in self.timing.items() if times]:
            self._measured(key, {"batch_size": key[0], "memory_format": key[1], "graph": key[2]})
        self.timing.clear()

    def _failed(self, key: Config, entry: dict) -> None:
        self.timing.pop(key, None)
        self.out_of_memory.add(key)
        self.results.append({**entry, "error": self.failure or "out of memory"})
        self.failure = None
        return None

    def _climb(self, memory_format: str, graph: str | None = None, start: int | None = None):
        """From the start: up while throughput improves, else down while it improves."""
        sizes = self.sizes
        start = self.start if start is None else start
        best = yield from self._rate(sizes[start], memory_format, graph)
        if best is None:  # out of memory: smaller batches only
            for i in range(start - 1, -1, -1):
                rate = yield from self._rate(sizes[i], memory_format, graph)
                if rate is not None:
                    best, start = rate, i
                    break
            else:
                return
        for step in (1, -1):
            i, moved = start + step, False
            while 0 <= i < len(sizes) and self.affordable(sizes[i], memory_format):
                rate = yield from self._rate(sizes[i], memory_format, graph)
                if rate is None or rate <= best:
                    break
                best, moved = rate, True
                i += step
            if moved:
                return


def _search_for(
    setup: AuditSetup, memory_formats: list[str], graphs: list[str] | None = None
) -> tuple[ProbeSearch, tuple]:
    """The search of a run, and the key of its choice among this process's probes."""
    device = setup.device
    graphs = list(graphs or ["eager"])
    chunk_views = setup.views_per_image() * min(setup.config.chunk_images, len(setup.items))
    sizes = candidate_batch_sizes(device, chunk_views)
    run_views = max(1, setup.views_per_image() * len(setup.items) // setup.ranks.world_size)
    search = ProbeSearch(
        sizes,
        memory_formats,
        START_BATCH.get(device.type, 4),
        run_views,
        graphs=graphs,
        force_graph=setup.config.graph == "frozen",
        build_estimate=_BUILD_SECONDS.get(_model_kind(setup), DEFAULT_BUILD_SECONDS),
    )
    return search, _process_key(setup, memory_formats, sizes, graphs)


# The last frozen-graph build (trace, freeze, check) this process measured for a kind of
# model: the estimate of the next one's cost (the first build in a process is the slowest).
_BUILD_SECONDS: dict[str, float] = {}


def _model_kind(setup: AuditSetup) -> str:
    kind = type(setup.loaded.module)
    return f"{kind.__module__}.{kind.__qualname__}"


def earlier_choice(
    setup: AuditSetup, memory_formats: list[str], graphs: list[str] | None = None
) -> dict | None:
    """This process's earlier choice for the same model object and settings, when this run is
    not long enough to deserve a larger budget than that probe had (else None)."""
    search, key = _search_for(setup, memory_formats, graphs)
    earlier = _PROCESS_PROBES.get(key)
    if earlier is not None and earlier.reusable(setup, search.run_views):
        return {**earlier.choice, "reused": True, "seconds": 0.0, "extra_seconds": 0.0}
    return None


def pending_record(setup: AuditSetup, memory_formats: list[str], graphs: list[str]) -> dict:
    """run.json's autotune entry until the probe on the run's own batches has chosen: the
    configuration it starts with, and the formats and graphs it tries. No chunk is committed
    before the choice replaces it, so a run killed meanwhile probes again on resume."""
    search, _ = _search_for(setup, memory_formats, graphs)
    return {
        "status": PENDING,
        "batch_size": search.sizes[search.start],
        "memory_format": memory_formats[0],
        "graph": "eager",
        "formats": list(memory_formats),
        "graphs": list(graphs),
    }


def is_pending(autotune: dict | None) -> bool:
    return bool(autotune) and autotune.get("status") == PENDING


def recorded_schedule(autotune: dict | None) -> dict[int, list[list]]:
    """chunk -> [[batch size, memory format, graph], ...]: the batches each chunk ran while
    the probe chose; a chunk recomputed on resume runs the same batches, so its rows are
    those of the uninterrupted run. (A record without graphs ran eagerly.)"""
    if not autotune or is_pending(autotune):
        return {}
    return {
        int(e["chunk"]): [[*b, "eager"][:3] for b in e["batches"]]
        for e in autotune.get("schedule", [])
    }


def _record(search: ProbeSearch, setup: AuditSetup) -> dict:
    batch_size, memory_format, graph = search.choice()
    record = {
        "batch_size": batch_size,
        "memory_format": memory_format,
        "graph": graph,
        "probes": search.results,
        "dtype": setup.config.dtype,
        "threads": torch.get_num_threads(),
        "budget_seconds": round(search.budget(), 3),
        "seconds": round(search.elapsed(), 3),
    }
    if search.graph_record is not None:
        record["graph_check"] = search.graph_record
    return record


def _remember(setup: AuditSetup, key: tuple, search: ProbeSearch, choice: dict) -> None:
    if search.rates:
        _PROCESS_PROBES[key] = _EarlierProbe(
            setup.loaded.module, choice, search.best_rate(), search.budget()
        )


class LiveProbe:
    """The probe on the run's own batches. The batcher asks it for the configuration of the
    next batch (`batch_size`, `memory_format`) and tells it what each batch took (`observe`),
    until it has chosen (`done`); `finish` then gives the record for run.json.

    Args:
        setup: the resolved run.
        memory_formats: formats to try ('contiguous', 'channels_last').
    """

    def __init__(self, setup: AuditSetup, memory_formats: list[str], graphs: list[str]):
        # graphs: ['eager'], or ['eager', 'frozen'] to try the frozen graph too
        self.setup = setup
        self.search, self.key = _search_for(setup, memory_formats, graphs)
        self.views = 0  # views of the run its batches computed (their rows are kept)
        self.calls: list[tuple[int, float]] = []  # (views, seconds) of every measured call
        self.schedule: dict[int, list[list]] = {}  # chunk -> [views, format, graph] per batch
        self._steps = self.search.steps()
        self._step: Step | None = next(self._steps)
        self._incomplete = False

    @property
    def done(self) -> bool:
        return self._step is None

    @property
    def batch_size(self) -> int:
        return self._step[0] if self._step else self.search.choice()[0]

    @property
    def memory_format(self) -> str:
        return self._step[1] if self._step else self.search.choice()[1]

    @property
    def graph(self) -> str:
        return self._step[2] if self._step else self.search.choice()[2]

    def graph_checked(self, check: dict) -> None:
        """The frozen graph's check on the batch about to run (see `Forward.check_graph`);
        when it is refused, that batch runs eagerly and the search moves on."""
        trial = self.search.graph_record
        if trial is None:
            trial = self.search.graph_record = {"tried": True}
        trial.setdefault("checks", []).append({k: v for k, v in check.items() if k != "reason"})
        if not check["ok"]:
            trial["reason"] = check["reason"]
            self.search.failure = f"graph refused: {check['reason']}"
            self.search.graph_refused = True
        if check.get("seconds"):
            _BUILD_SECONDS[_model_kind(self.setup)] = check["seconds"]

    def observe(self, chunk: int, views: int, seconds: float | None, graph: str) -> None:
        """A batch of `views` views of `chunk` ran at the current configuration in `seconds`
        (its forward, a frozen graph's build and check included) with `graph` (None: it ran
        out of memory; its views run again)."""
        if self._step is None:
            return
        if seconds is not None:
            self.views += views
            self.search.views_done = self.views
            self.calls.append((views, seconds))
            self.schedule.setdefault(chunk, []).append([views, self._step[1], graph])
            if graph != self._step[2]:  # the graph was refused: the configuration failed
                seconds = None
            elif views != self._step[0]:  # cut short by the end of a chunk: no measurement
                return
        try:
            self._step = self._steps.send(seconds)
        except StopIteration:
            self._step = None

    def finish(self) -> dict:
        """End the probe (at the latest when the run's views end) and return its record."""
        if self._step is not None:
            self._incomplete = True
            self._steps.close()
            self._step = None
            self.search.stop()
        search = self.search
        choice = _record(search, self.setup)
        rate = search.rates.get(search.choice())
        extra = sum(s - v / rate for v, s in self.calls) if rate else 0.0
        choice.update(
            {
                "on_run_views": True,
                "views": {"count": self.views, "from": "the run's own first views (rows kept)"},
                "forward_seconds": round(sum(s for _, s in self.calls), 3),
                "extra_seconds": round(max(0.0, extra), 3),
                "schedule": [
                    {"chunk": c, "batches": batches} for c, batches in self.schedule.items()
                ],
            }
        )
        if self._incomplete:
            choice["incomplete"] = True
        _remember(self.setup, self.key, search, choice)
        return choice


def choose_configuration(setup: AuditSetup, memory_formats: list[str]) -> dict:
    """Probe on copies of the first views (their outputs are thrown away) and return
    {'batch_size', 'memory_format', 'probes', 'seconds', 'views', ...}: the probe of a
    compiled run, whose every tried shape would be compiled.

    Args:
        setup: the resolved run (model on its device, protocols, images).
        memory_formats: formats to try ('contiguous', 'channels_last').
    """
    reused = earlier_choice(setup, memory_formats)  # compiled: eager graph only
    if reused is not None:
        return reused
    search, key = _search_for(setup, memory_formats)
    pool, pool_source = probe_views(setup)
    device = setup.device
    forward = Forward(
        setup.loaded.module,
        device,
        setup.config.dtype,
        memory_formats[0],
        measure=setup.measure,
        headless=setup.headless,
    )
    steps = search.steps()
    try:
        step = next(steps)
        while True:
            batch_size, memory_format, _graph, _timed = step
            if memory_format != forward.memory_format:
                forward.set_memory_format(memory_format)
            batch = pool[torch.arange(batch_size, device=pool.device) % len(pool)]
            try:
                seconds = _timed_call(forward, batch)
            except RuntimeError as exc:
                if not is_out_of_memory(exc):
                    raise
                del batch
                free_cached_memory(device)
                seconds = None
            step = steps.send(seconds)
    except StopIteration:
        pass
    finally:
        forward.close()  # the probe's feature hooks come off the module again
    set_memory_format(setup.loaded.module, "contiguous")
    choice = _record(search, setup)
    choice.update(
        {
            "on_run_views": False,
            "views": {"count": len(pool), "from": pool_source},
            "extra_seconds": choice["seconds"],
        }
    )
    _remember(setup, key, search, choice)
    return choice


class _EarlierProbe:
    """A probe made earlier in this process. Its choice is reused by a later audit of the
    same model object with the same settings (`_process_key`), unless that audit is long
    enough to deserve a larger budget than the earlier probe had: the probe, and the first
    forwards of each shape it builds kernels for, are then paid once per process rather than
    once per audit (a notebook or a benchmark that audits many folders)."""

    def __init__(self, module: torch.nn.Module, choice: dict, best_rate: float, budget: float):
        self.module = weakref.ref(module)  # an id alone could be reused by another model
        kept = ("batch_size", "memory_format", "graph", "probes", "dtype", "threads")
        kept += ("budget_seconds",) + (("graph_check",) if "graph_check" in choice else ())
        self.choice = {k: choice[k] for k in kept}  # the run-specific parts stay with that run
        self.best_rate = best_rate
        self.budget = budget  # unrounded: the choice records it rounded

    def reusable(self, setup: AuditSetup, run_views: int) -> bool:
        if self.module() is not setup.loaded.module:
            return False
        return probe_budget(run_views, self.best_rate) <= self.budget


_PROCESS_PROBES: dict[tuple, _EarlierProbe] = {}


def _process_key(
    setup: AuditSetup, memory_formats: list[str], sizes: list[int], graphs: list[str]
) -> tuple:
    """Everything the probe's choice depends on besides the model object itself."""
    return (
        tuple(graphs),
        setup.config.graph,
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


def _timed_call(forward: Forward, batch: torch.Tensor) -> float:
    """Seconds of one forward call of `batch`, the device synchronised before and after."""
    synchronize(forward.device)
    start = time.perf_counter()
    forward.outputs(batch)
    synchronize(forward.device)
    return time.perf_counter() - start


def free_cached_memory(device: torch.device) -> None:
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
