"""`--batch-size auto`: time a few batch sizes and memory formats (and, under `--graph auto`,
the ONNX Runtime and frozen graphs of `_graph`) on the run's own first batches, keep the
fastest.

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

ONNX Runtime's graph is tried right after one eager configuration at the smallest batch (it
takes no memory format), and when it runs at GRAPH_CLEAR_WIN x that or more, the rest of the
eager search is skipped (`eager_search` in the record says so); else the eager search runs,
then the frozen graph, at the best eager batch size and format (only where ONNX Runtime's
was not tried or was refused, see GRAPH_KINDS). A graph is tried only when the run's remaining views are
enough for it to pay for its build (see EXPECTED_SPEEDUP): its first batch builds it and
checks it against eager on that batch, whose rows are the check's eager outputs (refused:
the batch is then simply an eager one, and the reason is recorded); then timed calls follow
(more of them than for an eager configuration, GRAPH_MIN_TIMED_*, since the choice weighs
their rate against seconds of build; its rate is its fastest window of GRAPH_WINDOW_VIEWS
views), and it climbs batch sizes within a budget of its own (GRAPH_MIN_BUDGET_SECONDS). A
graph is chosen when it wins with its build counted: the build and the check's graph calls,
not the check's eager forward, whose rows are kept. The probe's cost (`extra_seconds`)
includes the build.

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

# A graph (`--graph`, see `_graph`) is tried only when it can pay for its build: when the
# run's remaining views, at the best eager rate, would take long enough that a gain of
# EXPECTED_SPEEDUP saves more than the build is expected to cost (the last build of that kind
# this process measured for that kind of model, else DEFAULT_BUILD_SECONDS). Measured on
# efficientnet_lite0 on this project's 2-core CPU against eager channels-last: the frozen
# graph 1.35-1.45x at batch 4 (its trace + freeze + optimisation 1.0 s the first time in a
# process, its check a few calls more); ONNX Runtime 1.5-1.8x at batch 2-8 (its export 2.2 s
# the first time in a process, imports included, its session 0.1 s). The speed-ups are the
# low ends of those ranges.
EXPECTED_SPEEDUP = {"frozen": 1.3, "onnx": 1.5}
DEFAULT_BUILD_SECONDS = {"frozen": 1.5, "onnx": 2.5}
# ONNX Runtime's graph ran faster than the frozen one wherever both were measured on this
# project's 2-core CPU (bare loops, 2 threads): lite0 at 1-8 views per batch, 53-77 views/s
# against 32-62 (quiet); resnet18 and mobilenet_v3_large (torchvision) at batch 1 and 4,
# 1.7-3x and over 30x (a loaded machine, where torch's threads suffer most). So the frozen
# graph is tried after it only when it was not tried (it could not pay for its larger build,
# or onnxruntime is not installed) or was refused: a second build would most likely be paid
# for nothing.
# A graph trial's timed calls: at least this many and this long together (or one call of
# GRAPH_LONG_CALL_SECONDS), and its climb's own budget, however short the run: its calls
# compute the run's rows, so they cost only where the graph is slower.
GRAPH_MIN_TIMED_CALLS = 4
GRAPH_MIN_TIMED_SECONDS = 0.3
GRAPH_LONG_CALL_SECONDS = 1.0
GRAPH_MIN_BUDGET_SECONDS = 1.0
# The eager search after ONNX Runtime's trial (other memory formats, the climb) runs only
# when the graph's best rate is below this multiple of the eager rate measured before it (at
# the smallest batch). Bare loops of lite0 on this project's quiet 2-core CPU: the graph
# 64 views/s at batch 1, eager's best configuration 34 and its batch of one 22-36; the graph
# ran 1.5-2.7x eager's best in every benchmark here. At worst, a skipped eager climb could
# have found a few percent more than the graph.
GRAPH_CLEAR_WIN = 1.5
# A graph trial's rate is its fastest window of at least this many views (consecutive timed
# calls), not its fastest call: a small batch makes many more calls in the same seconds, and
# the fastest of many calls on a shared machine is faster by chance alone.
GRAPH_WINDOW_VIEWS = 8

# One forward call to make: (batch size, memory format, graph, timed). The search is sent
# back the call's seconds, or None when it failed (out of memory, or the graph was refused).
Step = tuple[int, str, str, bool]
Config = tuple[int, str, str]  # batch size, memory format, graph


def _window_calls(batch_size: int) -> int:
    """Consecutive calls of `batch_size` views in one window of GRAPH_WINDOW_VIEWS views."""
    return max(1, -(-GRAPH_WINDOW_VIEWS // batch_size))


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
        forced: str | None = None,
        build_estimates: dict[str, float] | None = None,
        threads: int | None = None,
    ):
        self.sizes = sizes
        self.formats = formats
        self.start = max([i for i, b in enumerate(sizes) if b <= start_batch], default=0)
        self.run_views = run_views
        self.graphs = list(graphs or ["eager"])
        self.forced = forced  # --graph frozen/onnx: that graph, whenever its check passes
        self.build_estimates = {**DEFAULT_BUILD_SECONDS, **(build_estimates or {})}
        self.threads = threads if threads is not None else torch.get_num_threads()
        self.views_done = 0  # views of the run computed so far (told by whoever runs them)
        self.started = time.perf_counter()
        self.results: list[dict] = []
        self.rates: dict[Config, float] = {}
        self.out_of_memory: set[Config] = set()  # failed configurations (any reason)
        self.timing: dict[Config, list[float]] = {}  # timed calls so far
        self.failure: str | None = None  # why the next failure is sent (default: memory)
        self.trials: dict[str, dict] = {}  # graph -> its trial, for the record
        self.refused: set[str] = set()  # graphs whose check failed: not tried again
        self._trial_started = 0.0  # when the graph trial in progress began
        self.eager_search: str | None = None  # why the eager search stopped early (record)

    @property
    def main_graph(self) -> str:
        """The graph the batch sizes and formats are searched with: the one asked for
        (`forced`) unless refused, else eager (the other graphs are then tried at the end,
        `_try_graph`)."""
        return self.forced if self.forced and self.forced not in self.refused else "eager"

    def best_rate(self) -> float:
        return max(self.rates.values(), default=0.0)

    def _best(self, graph: str = "eager") -> Config | None:
        rates = {k: r for k, r in self.rates.items() if k[2] == graph}
        return max(rates, key=rates.get) if rates else None

    def budget(self) -> float:
        return probe_budget(self.run_views, self.best_rate())

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def affordable(self, batch_size: int, memory_format: str, graph: str | None = None) -> bool:
        """Whether (about three calls of) this configuration fit in what is left: of the
        probe's budget, or for a graph's trial, of its own (see GRAPH_MIN_BUDGET_SECONDS)."""
        rate = self._rate_at(batch_size // 2, memory_format) or self.best_rate()
        cost = 3 * batch_size / rate if rate else 0.0
        graph = graph or self.main_graph
        if graph != "eager" and graph != self.forced:
            checks = self.trials.get(graph, {}).get("checks", [])
            spent = time.perf_counter() - self._trial_started
            spent -= sum(c.get("seconds", 0.0) for c in checks)  # the build is not the climb's
            return spent + cost <= max(GRAPH_MIN_BUDGET_SECONDS, self.budget())
        return self.elapsed() + cost <= self.budget()

    def choice(self) -> Config:
        """The fastest eager configuration measured, or the graph that won most (see
        `_graph_saving`); without any, the smallest batch after out of memory (the run's own
        back-off takes over), else the starting configuration."""
        if self.main_graph != "eager" and self._best(self.main_graph):
            return self._best(self.main_graph)
        best = self._best()
        if best is not None:
            savings = {}
            for graph in self.graphs[1:]:
                found = self._best(graph)
                if found is not None and graph not in self.refused:
                    savings[found] = self._graph_saving(best, found)
            winner = max(savings, key=savings.get, default=None)
            return winner if winner is not None and savings[winner] > 0 else best
        if self.rates:
            return max(self.rates, key=self.rates.get)
        if self.out_of_memory:
            return self.sizes[0], self.formats[0], "eager"
        return self.sizes[self.start], self.formats[0], "eager"

    def _graph_saving(self, eager: Config, graph: Config) -> float:
        """Seconds the graph, its build included, saves against eager over the views that
        were left when it was tried (negative: it does not pay). Requiring it to pay for its
        build, not only to be faster, is a margin against choosing on timing noise."""
        trial = self.trials.get(graph[2], {})
        remaining = trial.get("remaining_views", 0)
        # what the checks cost beyond the eager forward of their batch, whose rows are kept:
        # the build and the graph's calls that compare and warm it
        build = sum(c.get("seconds", 0.0) - c.get("eager_seconds", 0.0) for c in trial["checks"])
        trial["build_cost_seconds"] = round(build, 3)
        saving = remaining / self.rates[eager] - (build + remaining / self.rates[graph])
        trial["saving_seconds"] = round(saving, 3)
        return saving

    def steps(self) -> Generator[Step, float | None, None]:
        start = self.sizes[self.start]
        if not self.forced and "onnx" in self.graphs[1:]:
            # ONNX Runtime's graph takes no memory format and climbs batch sizes itself: it
            # is tried right after one eager configuration, at the smallest batch (its
            # views run at eager speed, which under load was 10-25x slower than the graph
            # here; the graph's best batch was 1-4 on this CPU), and when it wins clearly
            # the rest of the eager search is not run
            yield from self._rate(self.sizes[0], self.formats[0])
            yield from self._try_graph("onnx")
            if self._graph_wins_clearly("onnx"):
                for graph in self.graphs[1:]:
                    self.trials.setdefault(
                        graph, {"tried": False, "why": "the onnx graph was tried"}
                    )
                return
        for memory_format in self.formats:  # every format at the starting size first
            yield from self._rate(start, memory_format)
        # The most promising format climbs first: a short budget is best spent there.
        ranked = sorted(self.formats, key=lambda f: -self._rate_at(start, f))
        for memory_format in ranked:
            yield from self._climb(memory_format)
        if self.forced:
            return
        for graph in self.graphs[1:]:
            if graph in self.trials:  # tried already
                continue
            onnx = self.trials.get("onnx", {})
            if graph == "frozen" and onnx.get("tried") and "onnx" not in self.refused:
                self.trials[graph] = {"tried": False, "why": "the onnx graph was tried"}
                continue
            yield from self._try_graph(graph)

    def _graph_wins_clearly(self, graph: str) -> bool:
        """Whether `graph` ran at GRAPH_CLEAR_WIN x the best eager rate or more, paying for
        its build: the eager search left then would not change the choice (recorded)."""
        eager, found = self._best(), self._best(graph)
        if eager is None or found is None or graph in self.refused:
            return False
        speedup = self.rates[found] / self.rates[eager]
        if speedup < GRAPH_CLEAR_WIN or self._graph_saving(eager, found) <= 0:
            return False
        self.eager_search = (
            f"stopped after {eager[0]}/{eager[1]}: the {graph} graph ran {speedup:.2f}x that"
        )
        return True

    def _rate_at(self, batch_size: int, memory_format: str) -> float:
        return max(
            (r for k, r in self.rates.items() if k[:2] == (batch_size, memory_format)),
            default=0.0,
        )

    def _try_graph(self, graph: str):
        """The graph at the best eager batch size (and format; ONNX Runtime's takes
        contiguous arrays), when it can pay for its build (see EXPECTED_SPEEDUP)."""
        best = self._best()
        if best is None:
            return
        remaining = max(0, self.run_views - self.views_done)
        eager_seconds = remaining / self.rates[best]
        saving = eager_seconds * (1 - 1 / EXPECTED_SPEEDUP[graph])
        build = self.build_estimates[graph]
        trial = self.trials[graph] = {
            "remaining_views": remaining,
            "expected_saving_seconds": round(saving, 3),
            "expected_build_seconds": round(build, 3),
        }
        if saving <= build:
            trial["tried"] = False
            return
        trial["tried"] = True
        self._trial_started = time.perf_counter()
        # one trace serves every batch size: the graph climbs from there too, within its
        # trial's budget
        yield from self._climb(best[1], graph, self.sizes.index(best[0]))

    def _rate(self, batch_size: int, memory_format: str, graph: str | None = None):
        """Views/s of the configuration (None when it fails: out of memory, or a graph
        refused by its check). `graph`: by default the one searched with."""
        graph = graph or self.main_graph
        if graph == "onnx":  # memory format is not a dimension of ONNX Runtime's graph
            memory_format = "contiguous"
        key = (batch_size, memory_format, graph)
        if key in self.rates or key in self.out_of_memory:
            return self.rates.get(key)
        if graph in self.refused:  # its check failed: not again
            return None
        entry = {"batch_size": batch_size, "memory_format": memory_format, "graph": graph}
        first = yield (batch_size, memory_format, graph, False)  # untimed: builds kernels
        if first is None:
            return self._failed(key, entry)
        times = self.timing[key] = []
        # Two timed calls at least (the fastest counts), more for fast calls, one for a call
        # that alone lasts LONG_CALL_SECONDS (noise is then a small part of it); more for a
        # graph's trial, whose rate is weighed against its build.
        calls, least, long = 2, MIN_TIMED_SECONDS, LONG_CALL_SECONDS
        if graph != "eager" and graph != self.forced:
            calls, least, long = (
                max(GRAPH_MIN_TIMED_CALLS, 2 * _window_calls(batch_size)),  # two windows
                GRAPH_MIN_TIMED_SECONDS,
                GRAPH_LONG_CALL_SECONDS,
            )
        while not times or (
            (len(times) < calls or sum(times) < least)
            and sum(times) < long
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
        if key[2] != "eager" and key[2] != self.forced:  # a graph's trial: see GRAPH_WINDOW_VIEWS
            calls = _window_calls(key[0])
            windows = [times[i : i + calls] for i in range(0, len(times) - calls + 1, calls)]
            per_call = min((sum(w) / len(w) for w in windows), default=sum(times) / len(times))
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
            while 0 <= i < len(sizes) and self.affordable(sizes[i], memory_format, graph):
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
    kind = _model_kind(setup)
    search = ProbeSearch(
        sizes,
        memory_formats,
        START_BATCH.get(device.type, 4),
        run_views,
        graphs=graphs,
        forced=setup.config.graph if setup.config.graph in graphs[1:] else None,
        build_estimates={
            g: _BUILD_SECONDS[(g, kind)] for g in graphs if (g, kind) in _BUILD_SECONDS
        },
        threads=torch.get_num_threads(),  # the run's: the engine's own work runs on one
    )
    return search, _process_key(setup, memory_formats, sizes, graphs)


# The last build (and check) of each graph this process measured for a kind of model, by
# (graph, model class): the estimate of the next one's cost (the first build in a process is
# the slowest).
_BUILD_SECONDS: dict[tuple[str, str], float] = {}


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
        "threads": search.threads,
        "budget_seconds": round(search.budget(), 3),
        "seconds": round(search.elapsed(), 3),
    }
    if search.trials:
        record["graph_check"] = search.trials  # graph -> its trial
    if search.eager_search:
        record["eager_search"] = search.eager_search
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
        # graphs: ['eager'], then the graphs to try too ('onnx', 'frozen')
        self.setup = setup
        self.search, self.key = _search_for(setup, memory_formats, graphs)
        self.views = 0  # views of the run its batches computed (their rows are kept)
        self.calls: list[tuple[int, float]] = []  # (views, seconds) of every measured call
        self.schedule: dict[int, list[list]] = {}  # chunk -> [views, format, graph] per batch
        self._steps = self.search.steps()
        self._step: Step | None = next(self._steps)
        self._incomplete = False
        self._passed = False  # the batch about to be observed passed its graph's check

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
        """The check of the step's graph on the batch about to run (see
        `Forward.check_graph`); that batch's rows are the check's eager outputs, and when
        the graph is refused the search moves on without it."""
        graph = self._step[2]
        trial = self.search.trials.setdefault(graph, {"tried": True})
        trial.setdefault("checks", []).append({k: v for k, v in check.items() if k != "reason"})
        self._passed = check["ok"]
        if not check["ok"]:
            trial["reason"] = check["reason"]
            self.search.failure = f"graph refused: {check['reason']}"
            self.search.refused.add(graph)
        if check.get("seconds"):
            extra = check["seconds"] - check.get("eager_seconds", 0.0)
            _BUILD_SECONDS[(graph, _model_kind(self.setup))] = round(extra, 3)

    def observe(self, chunk: int, views: int, seconds: float | None, graph: str) -> None:
        """A batch of `views` views of `chunk` ran at the current configuration in `seconds`
        (its forward, a graph's build and check included), its rows computed by `graph`
        (None: it ran out of memory; its views run again)."""
        if self._step is None:
            return
        passed, self._passed = self._passed, False
        if seconds is not None:
            self.views += views
            self.search.views_done = self.views
            self.calls.append((views, seconds))
            self.schedule.setdefault(chunk, []).append([views, self._step[1], graph])
            if graph != self._step[2] and not passed:  # the graph was refused: it failed
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


def probe_views(
    setup: AuditSetup, max_tries: int = 8, limit: int = POOL_VIEWS
) -> tuple[torch.Tensor, str]:
    """Up to POOL_VIEWS real views (normalised, on the device) of the first readable image,
    taken from every protocol in turn; random views when none of the first `max_tries`
    images can be read (the probe only needs the shapes then). `limit`: only the first that
    many of them are made (a fixed run's graph check needs one batch; inpaint views cost)."""
    prep = setup.loaded.preprocessing
    dataset = setup.dataset(setup.items[:max_tries])
    r = prep.input_size
    limit = max(1, min(limit, POOL_VIEWS))
    for i in range(len(dataset)):
        decoded = dataset[i]
        if decoded.error is not None:
            continue
        per_protocol = max(1, POOL_VIEWS // len(setup.protocols))
        views, made = [], 0
        for protocol in setup.protocols:
            source = prep.normalize(decoded.sources[protocol.source().key].to(setup.device))
            take = min(len(protocol.view_params_for(source)), per_protocol, limit - made)
            views.append(protocol.make_views(source, range(take)))
            made += take
            if made >= limit:
                break
        return torch.cat(views)[:limit], decoded.item.image_id
    generator = torch.Generator().manual_seed(0)
    pool = torch.randn(POOL_VIEWS, 3, r, r, generator=generator).to(setup.device)
    return pool[:limit], "random (none of the first images could be read)"
