"""Engine overhead: `jaggy audit` throughput against a bare `model(x)` loop, in one run.

Usage: python benchmarks/overhead.py [--images 64] [--rounds 3] [--batch-size 32]
       [--device cpu] [--dtype float32] [--model jaggy:efficientnet_lite0] [--skip-sweep]
       [--memory-format contiguous] [--compile] [--json FILE]

1. Fixed configuration: the audit (crop + black@140, 10 views each, real photos decoded in the
   engine's data worker, views made on the device, softmax/top-5, parquet, summary with
   bootstrap CIs, manifest) at --batch-size against a bare loop of model(x) over the same
   number of views, same model, batch size, dtype, device and threads. Target >= 0.95.
2. Automatic configuration: an exhaustive sweep of bare-forward batch sizes x memory formats
   (short timings) picks the 3 fastest configurations; every round, each of them runs a bare
   loop over the audit's number of views and the fastest counts as "the best bare-forward
   configuration", against the audit with --batch-size auto (its probe included in its time).
   Target >= 0.95.

Audit throughput = views / wall time of the whole audit (setup, probe, decoding, inference,
merge, summary, manifest); for part 2 the rate of the inference phase alone (what a long run
converges to, the probe being a one-time cost) is printed too. Every comparison is interleaved round by round (see _bench.py);
the script prints medians and round-by-round ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _bench import (  # noqa: E402
    bare_forward_rate,
    best_bare,
    interleaved,
    machine,
    median,
    photo_folder,
    ratio_median,
    rounds_text,
    spread,
    sweep_bare,
)

from jaggy.engine import AuditConfig
from jaggy.engine._device import resolve_device
from jaggy.engine._runner import execute
from jaggy.engine._setup import AuditSetup
from jaggy.models import load_model  # noqa: E402

PROTOCOLS = ["crop", "black"]
STEPS, SIZE = 10, 140


class Audit:
    """Runs complete audits of one folder with one loaded model; remembers the last run."""

    def __init__(self, loaded, folder: Path, work: Path, args):
        self.loaded, self.folder, self.work, self.args = loaded, folder, work, args
        self.count = 0
        self.last: dict = {}

    def rate(
        self, batch_size: int | str, workers: int | None = None, memory_format: str = "auto"
    ) -> float:
        self.count += 1
        out = self.work / f"audit{self.count}"
        config = AuditConfig(
            model=self.args.model,
            data=str(self.folder),
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
        setup = AuditSetup(config, self.loaded)
        result = execute(setup, progress=False)
        seconds = time.perf_counter() - start
        views = len(setup.items) * setup.views_per_image()
        manifest = result.manifest.to_dict()
        self.last = {
            "views": views,
            "seconds": seconds,
            "compute_rate": views / result.timings["compute"],
            "batch_size": manifest["batch_size"],
            "memory_format": manifest["memory_format"],
            "probe_seconds": (manifest["autotune"] or {}).get("seconds", 0.0),
        }
        shutil.rmtree(out)
        return views / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jaggy:efficientnet_lite0")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--workers", type=int, default=None, help="default: the engine's")
    parser.add_argument("--sweep-seconds", type=float, default=1.5)
    parser.add_argument("--sweep-rounds", type=int, default=2)
    parser.add_argument("--finalists", type=int, default=3)
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

    device = resolve_device(args.device)
    loaded = load_model(args.model, device=device)
    module = loaded.module.to(device).eval()
    if args.compile:
        module = torch.compile(module)  # the bare loop's; the audit compiles its own
    side = loaded.preprocessing.input_size
    work = Path(tempfile.mkdtemp(prefix="jaggy-overhead-"))
    folder = photo_folder(work / "images", args.images)
    audit = Audit(loaded, folder, work, args)
    views = args.images * len(PROTOCOLS) * STEPS
    print(json.dumps({"machine": machine(device), "model": args.model}, indent=1))
    print(f"{args.images} images x {len(PROTOCOLS) * STEPS} views = {views} views per audit")
    results: dict = {}

    fmt = args.memory_format
    print(f"\n1. fixed: batch {args.batch_size}, {args.dtype}, {fmt}, {device}")
    fixed = interleaved(
        args.rounds,
        {
            "audit": lambda: audit.rate(args.batch_size, args.workers, fmt),
            "bare model(x)": lambda: bare_forward_rate(
                module,
                batch_size=args.batch_size,
                n_views=views,
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
        print(
            "\n2. automatic: --batch-size auto against the best of a sweep of bare "
            f"configurations ({args.sweep_rounds} passes of {args.sweep_seconds} s each)"
        )
        swept = sweep_bare(
            module,
            device=device,
            dtype=args.dtype,
            input_size=side,
            seconds=args.sweep_seconds,
            rounds=args.sweep_rounds,
            max_batch=args.max_batch,
        )
        finalists = sorted(swept, key=swept.get, reverse=True)[: args.finalists]
        print(
            "   sweep (median views/s): "
            + ", ".join(f"{b}/{f}: {v:.1f}" for (b, f), v in swept.items())
        )
        print(
            "   finalists, timed again over the audit's views every round (the best counts): "
            + ", ".join(f"{b}/{f}" for b, f in finalists)
        )
        chosen: list[dict] = []
        winners: list[str] = []

        def auto() -> float:
            rate = audit.rate("auto", args.workers)
            chosen.append(dict(audit.last))
            print(
                f"     auto chose {audit.last['batch_size']}/{audit.last['memory_format']} "
                f"(probe {audit.last['probe_seconds']:.2f} s); inference phase "
                f"{audit.last['compute_rate']:.2f} views/s"
            )
            return rate

        def bare() -> float:
            rate, winner = best_bare(
                module, finalists, views, device=device, dtype=args.dtype, input_size=side
            )
            winners.append(winner)
            return rate

        auto_results = interleaved(args.rounds, {"audit auto": auto, "best bare (finalists)": bare})
        bare_best = auto_results["best bare (finalists)"]
        ratio_auto = ratio_median(auto_results["audit auto"], bare_best)
        steady = [c["compute_rate"] for c in chosen]
        ratio_steady = ratio_median(steady, bare_best)
        results["auto"] = {
            "audit": auto_results["audit auto"],
            "bare_best": bare_best,
            "finalists": [f"{b}/{f}" for b, f in finalists],
            "winners": winners,
            "sweep": {f"{b}/{f}": v for (b, f), v in swept.items()},
            "chosen": chosen,
            "ratio": ratio_auto,
            "ratio_without_probe": ratio_steady,
        }
        print(
            f"   audit auto {median(auto_results['audit auto']):.2f} views/s "
            f"{spread(auto_results['audit auto'])}, bare best {median(bare_best):.2f} "
            f"{spread(bare_best)}"
        )
        print(f"   round by round: {rounds_text(auto_results['audit auto'], bare_best)}")
        print(f"   RATIO audit auto / best swept bare = {ratio_auto:.3f}   (target >= 0.95)")
        print(
            f"   RATIO without the one-time probe (inference phase {median(steady):.2f} "
            f"views/s) = {ratio_steady:.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
