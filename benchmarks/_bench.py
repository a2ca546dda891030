"""Shared helpers of the benchmark scripts: the set-up every script shares (device, model,
a work folder, the machine and its load printed at the start and the end), a folder of real
photos, interleaved repeats, and the bare `model(x)` loop every engine number is compared with.

A bare configuration is (batch size, memory format, graph): the graph is `eager` (the module
itself), `frozen` (the frozen TorchScript graph jaggy's `--graph frozen` runs) or `onnx` (the
ONNX Runtime session `--graph onnx` runs, on contiguous arrays only), each built by jaggy's
own builder, once per module, format and thread count and outside the timed loop, so that
"the best bare configuration" stays the physical limit of whatever the engine may run.

Timing on a shared machine: other processes slow some runs down by chance, so every script
measures the configurations it compares interleaved (A, B, A, B, ... with the order rotated
each round) and reports medians over rounds; ratios are taken round by round and then their
median, so a disturbed round cannot favour one side.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from jaggy.data import sample_paths
from jaggy.engine._forward import AUTOCAST_DTYPES, TORCH_MEMORY_FORMATS
from jaggy.engine._graph import build_graph, graph_problem
from jaggy.engine._onnx import onnx_importable

Config = tuple[int, str, str]  # batch size, memory format, graph


def label(config: Config) -> str:
    """'4/channels_last' for eager, '4/channels_last/frozen' for the frozen graph,
    '4/contiguous/onnx' for ONNX Runtime's."""
    b, fmt, graph = config
    return f"{b}/{fmt}" if graph == "eager" else f"{b}/{fmt}/{graph}"


def bare_graphs(
    module: torch.nn.Module, device: torch.device, dtype: str = "float32", compile=False
) -> list[str]:
    """The graphs a bare loop can run where jaggy's engine could (`_graph.graph_problem`;
    ONNX Runtime's where it is installed)."""
    problem = graph_problem(module, device, dtype, compile=compile, hooked=False)
    if problem:
        return ["eager"]
    return ["eager", "frozen", "onnx"] if onnx_importable() else ["eager", "frozen"]


def graph_formats(graph: str) -> tuple[str, ...]:
    """The memory formats a graph runs in: ONNX Runtime's takes contiguous arrays only."""
    return ("contiguous",) if graph == "onnx" else ("contiguous", "channels_last")


_GRAPHS: dict[tuple, object] = {}


def graph_module(module: torch.nn.Module, input_size: int, memory_format: str, graph: str):
    """jaggy's `graph` ('frozen' or 'onnx') of `module` in `memory_format`, on this process's
    thread count (built once per module, format and threads, like the engine's, which builds
    it once per process)."""
    threads = torch.get_num_threads()
    key = (id(module), input_size, memory_format, graph, threads)
    if key not in _GRAPHS:
        fmt = TORCH_MEMORY_FORMATS[memory_format]
        _GRAPHS[key] = build_graph(graph, module, input_size, fmt, threads)
    return _GRAPHS[key]


@dataclass
class Bench:
    """What a benchmark script works with: the device, the loaded model (its module on the
    device, in eval mode), the model's input side and a work folder (removed at the end)."""

    device: torch.device
    loaded: object  # jaggy.models.LoadedModel
    module: torch.nn.Module
    side: int
    work: Path
    model: str

    def parts(self) -> tuple[torch.device, object, torch.nn.Module, int, Path]:
        """(device, loaded, module, side, work): what a script's `run` takes apart first."""
        return self.device, self.loaded, self.module, self.side, self.work


def load_average() -> str:
    """The machine's 1, 5 and 15-minute load averages, as printed at a script's start and end:
    timings taken under load are slower and noisier (ratios are interleaved for that)."""
    if not hasattr(os, "getloadavg"):
        return "not available"
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} cores)"


def with_load_average(main: Callable[[], int | None]) -> int:
    """Run a script's `main`, printing the load average before and after it."""
    print(f"load average at the start: {load_average()}", flush=True)
    try:
        return main() or 0
    finally:
        print(f"load average at the end: {load_average()}", flush=True)


@contextlib.contextmanager
def setup(model: str, device: str, name: str, **facts) -> Iterator[Bench]:
    """The shared set-up of a benchmark: resolve `device`, load `model` on it, make a work
    folder, print the machine (as JSON, with `facts`) and the load average; at the end print
    the load average again and remove the work folder."""
    from jaggy.engine._device import resolve_device
    from jaggy.models import load_model

    resolved = resolve_device(device)
    loaded = load_model(model, device=resolved)
    module = loaded.module.to(resolved).eval()
    work = Path(tempfile.mkdtemp(prefix=f"jaggy-{name}-"))
    print(json.dumps({"machine": machine(resolved), "model": model, **facts}, indent=1))
    print(f"load average at the start: {load_average()}", flush=True)
    try:
        yield Bench(resolved, loaded, module, loaded.preprocessing.input_size, work, model)
    finally:
        print(f"load average at the end: {load_average()}", flush=True)
        shutil.rmtree(work, ignore_errors=True)


def photo_folder(root: Path, n: int) -> Path:
    """`n` images in `root`: links to the sample photos (scikit-image, matplotlib), cycled.
    Real JPEG/PNG files of 300-640 px, so decoding costs what it costs on real data."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    photos = sorted(sample_paths().values())
    for i in range(n):
        source = Path(photos[i % len(photos)])
        (root / f"{i:05d}{source.suffix}").symlink_to(source)
    return root


def machine(device: torch.device) -> dict:
    """What the numbers were measured on."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["cpu"] = platform.processor()
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_forward_rate(
    module: torch.nn.Module,
    *,
    batch_size: int,
    n_views: int | None = None,
    min_seconds: float = 0.0,
    input_size: int = 224,
    memory_format: str = "contiguous",
    dtype: str = "float32",
    device: torch.device | None = None,
    graph: str = "eager",
) -> float:
    """Views/s of a bare loop of `module(x)` on one preallocated batch (the physical limit):
    `n_views` views in batches of `batch_size` (the last one smaller), or, without
    `n_views`, whole batches until `min_seconds` have passed. One untimed call first.
    `graph='frozen'` or `'onnx'`: the loop calls jaggy's graph of the module instead."""
    device = device or torch.device("cpu")
    fmt = TORCH_MEMORY_FORMATS[memory_format]
    eager = module.to(memory_format=fmt)
    if graph != "eager":
        module = graph_module(eager, input_size, memory_format, graph)
    else:
        module = eager
    x = torch.randn(batch_size, 3, input_size, input_size, device=device)
    x = x.contiguous(memory_format=fmt)
    autocast = AUTOCAST_DTYPES.get(dtype)
    context = torch.autocast(device.type, dtype=autocast) if autocast else contextlib.nullcontext()
    with torch.inference_mode(), context:
        module(x)
        synchronize(device)
        start = time.perf_counter()
        done = 0
        while (n_views is not None and done < n_views) or (
            n_views is None and (done == 0 or time.perf_counter() - start < min_seconds)
        ):
            take = batch_size if n_views is None else min(batch_size, n_views - done)
            module(x if take == batch_size else x[:take])
            done += take
        synchronize(device)
        seconds = time.perf_counter() - start
    eager.to(memory_format=torch.contiguous_format)
    return done / seconds


def interleaved(rounds: int, runs: dict[str, Callable[[], float]], log=print) -> dict[str, list]:
    """Call every run once per round, rotating the order each round; returns every result."""
    names = list(runs)
    results: dict[str, list] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            value = runs[name]()
            results[name].append(value)
            log(f"  round {r + 1}/{rounds}  {name:<28} {value:8.2f} views/s", flush=True)
    return results


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio_median(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of the round-by-round ratio."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def rounds_text(numerator: list[float], denominator: list[float]) -> str:
    """The round-by-round ratios, and the smallest (a target holds in every round or not)."""
    ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
    return ", ".join(f"{r:.3f}" for r in ratios) + f" (min {min(ratios):.3f})"


def spread(values: list[float]) -> str:
    return f"[{min(values):.2f} .. {max(values):.2f}]"


def sweep_bare(
    module: torch.nn.Module,
    *,
    device: torch.device,
    dtype: str = "float32",
    input_size: int = 224,
    seconds: float = 1.5,
    rounds: int = 2,
    max_batch: int | None = None,
    graphs: list[str] | None = None,
) -> dict[Config, float]:
    """Median views/s of a bare loop at every batch size the automatic configuration may
    choose (up to `max_batch`) x both memory formats x `graphs` (default: eager only;
    `bare_graphs` gives those the engine could run), `rounds` passes of `seconds` each."""
    from jaggy.engine._autotune import CPU_BATCH_SIZES, GPU_BATCH_SIZES

    sizes = GPU_BATCH_SIZES if device.type == "cuda" else CPU_BATCH_SIZES
    sizes = [b for b in sizes if max_batch is None or b <= max_batch]
    configs = [(b, f, g) for g in graphs or ["eager"] for b in sizes for f in graph_formats(g)]
    rates: dict[Config, list[float]] = {c: [] for c in configs}
    for _ in range(rounds):
        for b, fmt, graph in configs:
            rates[(b, fmt, graph)].append(
                bare_forward_rate(
                    module,
                    batch_size=b,
                    min_seconds=seconds,
                    input_size=input_size,
                    memory_format=fmt,
                    dtype=dtype,
                    device=device,
                    graph=graph,
                )
            )
    return {c: median(v) for c, v in rates.items()}


def pick_finalists(swept: dict[Config, float], n: int) -> list[Config]:
    """The `n` fastest configurations of each graph in a sweep (so that the best eager loop
    and the best loop of any graph are both among them)."""
    finalists: list[Config] = []
    for graph in dict.fromkeys(c[2] for c in swept):
        ranked = sorted((c for c in swept if c[2] == graph), key=swept.get, reverse=True)
        finalists += ranked[:n]
    return finalists


@dataclass
class BareBest:
    """One round of bare loops over the finalists: the best of any graph and the best eager
    one (DESIGN's "bare `model(x)` loop"), each with its configuration's label."""

    rate: float
    winner: str
    eager_rate: float
    eager_winner: str


def best_bare(
    module: torch.nn.Module,
    finalists: list[Config],
    n_views: int,
    *,
    device: torch.device,
    dtype: str = "float32",
    input_size: int = 224,
    log=print,
) -> BareBest:
    """The best bare-forward rates over `n_views` views among `finalists` (each timed now):
    of any graph, and eager."""
    rates = {
        config: bare_forward_rate(
            module,
            batch_size=config[0],
            n_views=n_views,
            input_size=input_size,
            memory_format=config[1],
            dtype=dtype,
            device=device,
            graph=config[2],
        )
        for config in finalists
    }
    log("     bare " + ", ".join(f"{label(k)}: {v:.2f}" for k, v in rates.items()), flush=True)
    winner = max(rates, key=rates.get)
    eager = {c: r for c, r in rates.items() if c[2] == "eager"}
    eager_winner = max(eager, key=eager.get)
    return BareBest(rates[winner], label(winner), eager[eager_winner], label(eager_winner))
