"""Streaming: peak memory of `jaggy audit` for N and for 10N images, each in a fresh process.

Usage: python benchmarks/memory.py [--images 25] [--factor 10] [--steps 4] [--batch-size 16]
       [--model jaggy:efficientnet_lite0]

Each audit runs in its own subprocess (so one run's allocations cannot hide the other's) with
the same model, protocols (crop + black@140), batch size and chunk size; only the number of
images differs. The subprocess reports its peak resident set size (ru_maxrss; most of it is torch itself and the
model). Target: the 10N run's peak under 1.1x the N run's (memory does not grow with
the number of images: rows stream to parquet chunk by chunk).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _bench import machine, photo_folder, with_load_average  # noqa: E402


def child(args) -> int:
    """Run one audit and print its peak memory as JSON (the subprocess side)."""
    from jaggy.engine import AuditConfig, run_audit

    start = time.perf_counter()
    result = run_audit(
        AuditConfig(
            model=args.model,
            data=args.data,
            images=args.n,
            protocols=["crop", "black"],
            steps=args.steps,
            sizes=[140],
            batch_size=args.batch_size,
            out=args.out,
        ),
        progress=False,
    )
    kib = 1024  # ru_maxrss is in KiB on Linux
    print(
        json.dumps(
            {
                "images": args.n,
                "views": result.manifest.images["used"] * 2 * args.steps,
                "seconds": time.perf_counter() - start,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 2**20,
            }
        )
    )
    return 0


def measure(args, n: int, folder: Path, out: Path) -> dict:
    command = [sys.executable, __file__, "--child", "--n", str(n), "--data", str(folder)]
    command += ["--out", str(out), "--model", args.model, "--steps", str(args.steps)]
    command += ["--batch-size", str(args.batch_size)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jaggy:efficientnet_lite0")
    parser.add_argument("--images", type=int, default=25, help="N")
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    import torch

    work = Path(tempfile.mkdtemp(prefix="jaggy-memory-"))
    big = args.images * args.factor
    folder = photo_folder(work / "images", big)
    print(json.dumps({"machine": machine(torch.device("cpu")), "model": args.model}, indent=1))
    runs: dict[int, list[dict]] = {args.images: [], big: []}
    for r in range(args.rounds):
        for n in (args.images, big) if r % 2 == 0 else (big, args.images):
            result = measure(args, n, folder, work / "out")
            runs[n].append(result)
            print(
                f"  {n:5d} images ({result['views']} views, {result['seconds']:.0f} s): peak RSS "
                f"{result['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    small_peak = max(r["peak_rss_mib"] for r in runs[args.images])
    big_peak = max(r["peak_rss_mib"] for r in runs[big])
    print(f"growth {big_peak - small_peak:+.0f} MiB for {big - args.images} more images")
    print(
        f"RATIO peak RSS {big} / {args.images} images = {big_peak / small_peak:.3f}   "
        "(target < 1.1)"
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(with_load_average(main))
