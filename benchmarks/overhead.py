"""Engine overhead: `jaggy audit` throughput against a bare `model(x)` loop, in one run.

Usage: python benchmarks/overhead.py [--images 48] [--fixed-images 16] [--rounds 3]
       [--batch-size 32]
       [--device cpu] [--dtype float32] [--model jaggy:efficientnet_lite0] [--skip-sweep]
       [--memory-format contiguous] [--compile] [--json FILE]

The defaults (part 1: 16 photos, 320 views per audit at the slow batch 32; part 2: 48 photos,
960 views per audit, so that the audit's fixed costs (set-up, metrics, summary, manifest) stay
a few percent as in a real run; a sweep of one 1 s pass per configuration; two finalists)
finish in about 4 minutes on a quiet 2-core CPU. `--images 64 --fixed-images 64
--sweep-rounds 2 --sweep-seconds 1.5 --finalists 3` is the longer measurement (1280 views per
audit, over 11 minutes there).

1. Fixed configuration: the audit (crop + black@140, 10 views each, real photos decoded in the
   engine's data worker, views made on the device, softmax/top-5, parquet, summary with
   bootstrap CIs, manifest) at --batch-size against a bare loop of model(x) over the same
   number of views, same model, batch size, dtype, device and threads. Target >= 0.95.
2. Automatic configuration: an exhaustive sweep of bare-forward batch sizes x memory formats
   x graphs (eager `model(x)`, and jaggy's frozen and ONNX Runtime graphs where the engine
   could run them; short timings) picks the --finalists fastest configurations of each graph,
   joined by every configuration auto chose; every round, each of them runs a bare loop over
   the audit's number of views, against the audit with --batch-size auto (its probe, and the
   build of each graph it tries, included in its time). Two ratios: against the
   best bare eager `model(x)` loop (DESIGN's wording; target >= 0.95) and against the best
   bare loop of any graph (the physical limit of what the engine may run).

Audit throughput = views / wall time of the whole audit (setup, probe, decoding, inference,
merge, summary, manifest). The probe runs on the audit's own first batches, so what it costs is
the difference between the configurations it tried and the chosen one (`extra_seconds` in the
manifest); for part 2 the rate without that one-time cost is printed too. Every comparison is interleaved round by round (see _bench.py);
the script prints medians and round-by-round ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _bench import (  # noqa: E402
    Bench,
    bare_forward_rate,
    bare_graphs,
    best_bare,
    interleaved,
    label,
    median,
    photo_folder,
    pick_finalists,
    ratio_median,
    rounds_text,
    setup,
    spread,
    sweep_bare,
)

from jaggy.engine import AuditConfig
from jaggy.engine._runner import execute
from jaggy.engine._setup import AuditSetup

PROTOCOLS = ["crop", "black"]
STEPS, SIZE = 10, 140


class Audit:
    """Runs complete audits of one folder with one loaded model; remembers the last run."""

    def __init__(self, loaded, work: Path, args):
        self.loaded, self.work, self.args = loaded, work, args
        self.count = 0
        self.last: dict = {}

    def rate(
        self,
        folder: Path,
        batch_size: int | str,
        workers: int | None = None,
        memory_format: str = "auto",
    ) -> float:
        self.count += 1
        out = self.work / f"audit{self.count}"
        config = AuditConfig(
            model=self.args.model,
            data=str(folder),
            protocols=PROTOCOLS,
            steps=STEPS,
            sizes=[SIZE],
            batch_size=batch_size,
            device=self.args.device,
            dtype=self.args.dtype,
            compile=self.args.compile,
            memory_format=memory_format,
            workers=workers,
            out=str(out),
        )
        start = time.perf_counter()
        run = AuditSetup(config, self.loaded)
        result = execute(run, progress=False)
        seconds = time.perf_counter() - start
        views = len(run.items) * run.views_per_image()
        manifest = result.manifest.to_dict()
        tuned = manifest["autotune"] or {}
        self.last = {
            "views": views,
            "seconds": seconds,
            "rate_without_probe": views / (seconds - result.timings["autotune"]),
            "batch_size": manifest["batch_size"],
            "memory_format": manifest["memory_format"],
            "graph": manifest.get("graph", "eager"),
            "probe_cost_seconds": result.timings["autotune"],
            "probe_phase_seconds": tuned.get("seconds", 0.0),
            "probe_views": (tuned.get("views") or {}).get("count", 0),
            "reused_probe": bool(tuned.get("reused")),
        }
        shutil.rmtree(out)
        return views / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jaggy:efficientnet_lite0")
    parser.add_argument("--images", type=int, default=48, help="photos of part 2 (auto)")
    parser.add_argument(
        "--fixed-images", type=int, default=16, help="photos of part 1 (a slow batch size)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--workers", type=int, default=None, help="default: the engine's")
    parser.add_argument("--sweep-seconds", type=float, default=1.0)
    parser.add_argument("--sweep-rounds", type=int, default=1)
    parser.add_argument("--finalists", type=int, default=2)
    parser.add_argument("--max-batch", type=int, help="largest batch size of the sweep")
    parser.add_argument("--skip-sweep", action="store_true", help="part 1 only")
    parser.add_argument(
        "--memory-format",
        default="contiguous",
        choices=["contiguous", "channels_last"],
        help="part 1's layout (audit and bare loop)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the model (audit and bare loop)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args(argv)
    with setup(args.model, args.device, "overhead") as bench:
        return run(args, bench)


def run(args, bench: Bench) -> int:
    device, loaded, module, side, work = bench.parts()
    if args.compile:
        module = torch.compile(module)  # the bare loop's; the audit compiles its own
    audit = Audit(loaded, work, args)
    per_image = len(PROTOCOLS) * STEPS
    results: dict = {}

    fmt = args.memory_format
    fixed_folder = photo_folder(work / "fixed", args.fixed_images)
    fixed_views = args.fixed_images * per_image
    print(
        f"\n1. fixed: batch {args.batch_size}, {args.dtype}, {fmt}, {device}; "
        f"{args.fixed_images} images x {per_image} views = {fixed_views} views per audit"
    )
    fixed = interleaved(
        args.rounds,
        {
            "audit": lambda: audit.rate(fixed_folder, args.batch_size, args.workers, fmt),
            "bare model(x)": lambda: bare_forward_rate(
                module,
                batch_size=args.batch_size,
                n_views=fixed_views,
                input_size=side,
                memory_format=fmt,
                dtype=args.dtype,
                device=device,
            ),
        },
    )
    ratio = ratio_median(fixed["audit"], fixed["bare model(x)"])
    results["fixed"] = {**fixed, "ratio": ratio}
    print(
        f"   audit {median(fixed['audit']):.2f} views/s {spread(fixed['audit'])}, bare "
        f"{median(fixed['bare model(x)']):.2f} {spread(fixed['bare model(x)'])}"
    )
    print(f"   round by round: {rounds_text(fixed['audit'], fixed['bare model(x)'])}")
    print(f"   RATIO audit / bare (fixed) = {ratio:.3f}   (target >= 0.95)")

    if not args.skip_sweep:
        folder = photo_folder(work / "images", args.images)
        views = args.images * per_image
        print(
            "\n2. automatic: --batch-size auto against the best of a sweep of bare "
            f"configurations ({args.sweep_rounds} passes of {args.sweep_seconds} s each); "
            f"{args.images} images x {per_image} views = {views} views per audit"
        )
        swept = sweep_bare(
            module,
            device=device,
            dtype=args.dtype,
            input_size=side,
            seconds=args.sweep_seconds,
            rounds=args.sweep_rounds,
            max_batch=args.max_batch,
            graphs=bare_graphs(module, device, args.dtype, compile=args.compile),
        )
        finalists = pick_finalists(swept, args.finalists)
        print(
            "   sweep (median views/s): "
            + ", ".join(f"{label(c)}: {v:.1f}" for c, v in swept.items())
        )
        print(
            "   finalists, timed again over the audit's views every round (the best counts; "
            "with what auto chose): " + ", ".join(label(c) for c in finalists)
        )
        chosen: list[dict] = []
        winners: list[str] = []
        eager_best: list[float] = []
        eager_winners: list[str] = []

        def auto() -> float:
            rate = audit.rate(folder, "auto", args.workers)
            chosen.append(dict(audit.last))
            last = audit.last
            probe = (
                "probe reused"
                if last["reused_probe"]
                else f"probe cost {last['probe_cost_seconds']:.2f} s over "
                f"{last['probe_phase_seconds']:.2f} s of its batches ({last['probe_views']} "
                "views kept)"
            )
            graph = last["graph"]
            print(
                f"     auto chose {last['batch_size']}/{last['memory_format']}/{graph} ({probe}); "
                f"without the probe's cost {last['rate_without_probe']:.2f} views/s"
            )
            return rate

        def bare() -> float:
            # the configurations auto chose so far are always finalists too (a short sweep
            # under load can miss the best one)
            for c in chosen:
                config = (c["batch_size"], c["memory_format"], c["graph"])
                if config not in finalists:
                    finalists.append(config)
            best = best_bare(
                module, finalists, views, device=device, dtype=args.dtype, input_size=side
            )
            winners.append(best.winner)
            eager_best.append(best.eager_rate)
            eager_winners.append(best.eager_winner)
            return best.rate

        auto_results = interleaved(
            args.rounds, {"audit auto": auto, "best bare, any graph (finalists)": bare}
        )
        audited = auto_results["audit auto"]
        bare_best = auto_results["best bare, any graph (finalists)"]
        ratio_eager = ratio_median(audited, eager_best)
        ratio_auto = ratio_median(audited, bare_best)
        steady = [c["rate_without_probe"] for c in chosen]
        ratio_steady = ratio_median(steady, bare_best)
        results["auto"] = {
            "audit": audited,
            "bare_best": bare_best,
            "bare_best_eager": eager_best,
            "finalists": [label(c) for c in finalists],
            "winners": winners,
            "eager_winners": eager_winners,
            "sweep": {label(c): v for c, v in swept.items()},
            "chosen": chosen,
            "ratio_vs_eager": ratio_eager,
            "ratio": ratio_auto,
            "ratio_without_probe": ratio_steady,
        }
        print(
            f"   audit auto {median(audited):.2f} views/s {spread(audited)}, best bare eager "
            f"{median(eager_best):.2f} {spread(eager_best)} ({', '.join(eager_winners)}), best "
            f"bare of any graph {median(bare_best):.2f} {spread(bare_best)} ({', '.join(winners)})"
        )
        print(f"   round by round against eager: {rounds_text(audited, eager_best)}")
        print(
            f"   RATIO audit auto / best bare eager model(x) = {ratio_eager:.3f}   (target >= 0.95)"
        )
        print(f"   round by round against any graph: {rounds_text(audited, bare_best)}")
        print(f"   RATIO audit auto / best bare of any graph = {ratio_auto:.3f}")
        print(f"   round by round without the probe's cost: {rounds_text(steady, bare_best)}")
        print(
            f"   RATIO without the probe's one-time cost ({median(steady):.2f} views/s) / best "
            f"bare of any graph = {ratio_steady:.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
