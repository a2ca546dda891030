"""The engine's own cost at one fixed configuration: the audit against a bare loop of the
same forward, split into the forward's time and the engine's, per view.

Usage: python benchmarks/engine_overhead.py [--images 24] [--rounds 3] [--batch-size 4]
       [--memory-format channels_last] [--graph eager --graph frozen] [--no-batches] [--demo]

Every round runs, interleaved (the order rotated each round):
- the audit (crop + black@140, 10 views each, real photos; with --demo, the demo's protocols
  on the sample photos: study_crop, study_black, crop, black and inpaint at 172/140/117, scale,
  580 views, whose inpaint views are the most view-making work) at the fixed batch size, memory
  format and graph, with every call of the model timed inside it (`Forward.outputs`), so its
  wall time splits into forward milliseconds per view and the engine's (everything else:
  decoding, views, rows, files, summary);
- a bare loop of the same forward (the eager module, or the same frozen graph the audit
  ran) over one fixed contiguous tensor, for the same number of views.
Ratios are round by round, then their median (see _bench.py). Unless --no-batches, it also
times the forward on batches shaped as the audit gives them (copied from a view block into a
new tensor in the memory format each call, the engine's torch work on one thread between
calls) against the fixed tensor, interleaved call by call, to show whether the forward runs
slower inside the audit for a reason of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Bench, load_average, median, photo_folder, setup  # noqa: E402

from jaggy.cli.demo import DEMO_PROTOCOLS, DEMO_SIZES
from jaggy.engine import AuditConfig
from jaggy.engine._forward import TORCH_MEMORY_FORMATS, Forward
from jaggy.engine._graph import ModelGraphs
from jaggy.engine._runner import execute
from jaggy.engine._setup import AuditSetup
from jaggy.engine._threads import engine_threads, torch_threads
from jaggy.results._thumbnails import ThumbnailWriter

PROTOCOLS = ["crop", "black"]
STEPS, SIZE = 10, 140


class ForwardClock:
    """Times every call of `Forward.outputs` (the model's forward, inside the audit)."""

    def __init__(self):
        self.seconds = 0.0
        self.cpu = 0.0  # the calling thread's CPU seconds inside the calls
        self.calls = 0
        self._original = Forward.outputs

    def __enter__(self):
        clock, original = self, self._original

        def timed(forward, views, given=None):
            started, cpu = time.perf_counter(), time.thread_time()
            out = original(forward, views, given)
            clock.seconds += time.perf_counter() - started
            clock.cpu += time.thread_time() - cpu
            clock.calls += 1
            return out

        Forward.outputs = timed
        return self

    def __exit__(self, *exc):
        Forward.outputs = self._original


@contextlib.contextmanager
def inline_engine():
    """The engine as it was before its background thread: each image decoded inline when it
    is needed, and its thumbnails shrunk and written inline (for an A/B in one process)."""
    from jaggy.engine import _runner

    ahead, write = _runner.DECODE_AHEAD, ThumbnailWriter.write
    _runner.DECODE_AHEAD = 0
    ThumbnailWriter.write = lambda self, thumbnails: thumbnails.write()
    try:
        yield
    finally:
        _runner.DECODE_AHEAD, ThumbnailWriter.write = ahead, write


def audit_once(
    bench: Bench, folder: Path, args, graph: str, count: list[int], inline: bool = False
) -> dict:
    if inline:
        with inline_engine():
            return audit_once(bench, folder, args, graph, count)
    count[0] += 1
    out = bench.work / f"audit{count[0]}"
    if args.demo:
        data = {"samples": True, "protocols": list(DEMO_PROTOCOLS), "sizes": list(DEMO_SIZES)}
    else:
        data = {"data": str(folder), "protocols": PROTOCOLS, "sizes": [SIZE]}
    config = AuditConfig(
        model=bench.model,
        **data,
        steps=STEPS,
        batch_size=args.batch_size,
        memory_format=layout(graph, args.memory_format),
        graph=graph,
        device=str(bench.device),
        out=str(out),
    )
    with ForwardClock() as clock:
        started, cpu = time.perf_counter(), time.thread_time()
        run = AuditSetup(config, bench.loaded)
        result = execute(run, progress=False)
        seconds = time.perf_counter() - started
        cpu = time.thread_time() - cpu
    views = len(run.items) * run.views_per_image()
    assert result.manifest.graph == graph, result.manifest.graph_check
    shutil.rmtree(out)
    return {
        "views": views,
        "seconds": seconds,
        "forward": clock.seconds,
        "calls": clock.calls,
        # the engine's own CPU time on the audit's thread (the forward's calls excluded): the
        # critical-path work, which load from other processes does not inflate
        "engine_cpu": cpu - clock.cpu,
    }


def graph_of(bench: Bench, graph: str, memory_format: str):
    """The forward the audit runs: the eager module, or its graph (the same object, from this
    process's graph cache, which the audit then finds)."""
    fmt = TORCH_MEMORY_FORMATS[memory_format]
    module = bench.module.to(memory_format=fmt)
    if graph == "eager":
        return module
    graphs = ModelGraphs(bench.loaded.module, bench.side, bench.loaded.weights_hash())
    return graphs.get(graph, fmt, torch.get_num_threads())


def layout(graph: str, memory_format: str) -> str:
    """The memory format a graph runs in: ONNX Runtime's takes contiguous arrays."""
    return "contiguous" if graph == "onnx" else memory_format


def bare_once(forward, batch: int, views: int, side: int, memory_format: str) -> float:
    fmt = TORCH_MEMORY_FORMATS[memory_format]
    x = torch.randn(batch, 3, side, side).contiguous(memory_format=fmt)
    with torch.inference_mode():
        forward(x)
        started = time.perf_counter()
        done = 0
        while done < views:
            take = min(batch, views - done)
            forward(x if take == batch else x[:take])
            done += take
        return time.perf_counter() - started


def batches_once(forward, batch: int, calls: int, side: int, memory_format: str) -> dict:
    """Per-call seconds of the forward on a fixed tensor against batches made as the audit
    makes them (a new tensor in the memory format, copied from a contiguous view block, the
    surrounding torch work on one thread), alternating call by call."""
    fmt = TORCH_MEMORY_FORMATS[memory_format]
    threads = torch.get_num_threads()
    fixed = torch.randn(batch, 3, side, side).contiguous(memory_format=fmt)
    block = torch.randn(10, 3, side, side)  # a protocol's stacked views (contiguous)
    times = {"fixed": [], "audit-like": [], "audit-like, threads kept": []}
    with torch.inference_mode():
        forward(fixed)
        for i in range(calls):
            for name in times:
                if name == "fixed":
                    started = time.perf_counter()
                    forward(fixed)
                    times[name].append(time.perf_counter() - started)
                    continue
                keep = name.endswith("kept")
                with engine_threads(torch.device("cpu")) if not keep else torch_threads(threads):
                    start = (i * batch) % (10 - batch + 1)
                    x = torch.empty((batch, 3, side, side), memory_format=fmt)
                    x.copy_(block[start : start + batch])
                    with torch_threads(threads):
                        started = time.perf_counter()
                        logits = forward(x)
                        times[name].append(time.perf_counter() - started)
                    logits.softmax(-1).topk(5)
    return {k: median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jaggy:efficientnet_lite0")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--memory-format", default="channels_last", choices=["contiguous", "channels_last"]
    )
    parser.add_argument("--graph", action="append", choices=["eager", "frozen", "onnx"])
    parser.add_argument("--batch-calls", type=int, default=30)
    parser.add_argument("--no-batches", action="store_true")
    parser.add_argument(
        "--demo", action="store_true", help="the demo's protocols on the sample photos"
    )
    parser.add_argument(
        "--inline",
        action="store_true",
        help="also run the audit with decoding and thumbnails inline (the previous engine)",
    )
    args = parser.parse_args(argv)
    with setup(args.model, "cpu", "engine-overhead", batch_size=args.batch_size) as bench:
        folder = None if args.demo else photo_folder(bench.work / "photos", args.images)
        count = [0]
        for graph in args.graph or ["eager", "frozen", "onnx"]:
            measure_graph(bench, folder, args, graph, count)
    return 0


def measure_graph(bench: Bench, folder: Path, args, graph: str, count: list[int]) -> None:
    """The interleaved rounds of one graph, printed."""
    fmt = layout(graph, args.memory_format)
    forward = graph_of(bench, graph, fmt)
    warm = audit_once(bench, folder, args, graph, count)  # first forward of each shape
    audits, bares, inlines = [], [], []
    for r in range(args.rounds):
        steps = [
            lambda: audits.append(audit_once(bench, folder, args, graph, count)),
            lambda: bares.append(
                bare_once(
                    forward,
                    args.batch_size,
                    warm["views"],
                    bench.side,
                    fmt,
                )
            ),
        ]
        if args.inline:
            steps.append(
                lambda: inlines.append(audit_once(bench, folder, args, graph, count, inline=True))
            )
        shift = r % len(steps)
        for step in steps[shift:] + steps[:shift]:
            step()
    what = "the demo's protocols, sample photos" if args.demo else f"{args.images} photos"
    print(f"\n{args.batch_size}/{fmt}/{graph}, {what} (load average {load_average()}):")
    for name, runs in (("audit", audits), ("inline audit", inlines)):
        if not runs:
            continue
        ratios, ratios_forward = [], []
        for a, bare in zip(runs, bares, strict=True):
            n = a["views"]
            engine = a["seconds"] - a["forward"]
            ratios.append(bare / a["seconds"])
            ratios_forward.append(bare / a["forward"])
            print(
                f"  {name} {1e3 * a['seconds'] / n:6.2f} ms/view = forward "
                f"{1e3 * a['forward'] / n:6.2f} + engine {1e3 * engine / n:5.2f}; bare "
                f"{1e3 * bare / n:6.2f} ms/view; {name}/bare {bare / a['seconds']:.3f}, "
                f"forward inside/bare {bare / a['forward']:.3f}; engine CPU on the audit's "
                f"thread {1e3 * a['engine_cpu'] / n:5.2f} ms/view"
            )
        print(
            f"  RATIO {name} / bare ({graph}) = {median(ratios):.3f} (rounds "
            + ", ".join(f"{r:.3f}" for r in ratios)
            + f"); forward inside the audit / bare = {median(ratios_forward):.3f}"
        )
    if inlines:
        cpu = [i["engine_cpu"] / a["engine_cpu"] for a, i in zip(audits, inlines, strict=True)]
        print(
            "  RATIO inline / background: engine CPU on the audit's thread = "
            f"{median(cpu):.3f} (rounds " + ", ".join(f"{r:.3f}" for r in cpu) + ")"
        )
        ab = [i["seconds"] / a["seconds"] for a, i in zip(audits, inlines, strict=True)]
        print(
            f"  RATIO inline audit time / audit time = {median(ab):.3f} (rounds "
            + ", ".join(f"{r:.3f}" for r in ab)
            + ")"
        )
    if not args.no_batches:
        per_call = batches_once(forward, args.batch_size, args.batch_calls, bench.side, fmt)
        fixed = per_call["fixed"]
        print(
            "  per call (median): "
            + ", ".join(
                f"{k} {1e3 * v:.1f} ms ({fixed / v:.3f} of fixed)" for k, v in per_call.items()
            )
        )


if __name__ == "__main__":
    raise SystemExit(main())
