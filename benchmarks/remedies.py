"""Forward-time cost of each remedy, as a ratio to the base model, measured in one run.

Usage: python benchmarks/remedies.py [--model jaggy:efficientnet_lite0] [--batch-size 32]
       [--threads 2] [--rounds 5] [--remedy blurpool:4 --remedy aps --remedy aps,circular]

Each variant is the same model loaded with `remedies=[...]` (a comma joins remedies applied in
order). Timings are interleaved round by round (base, variant 1, variant 2, ..., base, ...) so
that drift in the machine's load hits every variant alike. For one batched forward pass under
`torch.inference_mode` it reports the fastest wall time over rounds (the least disturbed by
other work on a shared machine) and the median CPU time of this process (all its threads),
each with its ratio to the base model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _bench import with_load_average  # noqa: E402

from jaggy.models import load_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jaggy:efficientnet_lite0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=None, help="input side (default: model's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--remedy",
        action="append",
        default=None,
        help="remedy spec, commas for several in order (repeatable)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    remedies = args.remedy or ["blurpool:4", "aps", "aps,circular"]

    variants = {"base": load_model(args.model)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for spec in remedies:
            variants[spec] = load_model(args.model, remedies=spec.split(","))
    size = args.size or variants["base"].preprocessing.input_size
    x = torch.randn(args.batch_size, 3, size, size)

    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for loaded in variants.values():  # warm-up: allocator, kernels, first-call caches
            loaded.module(x)
        for _ in range(args.rounds):
            for name, loaded in variants.items():
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                loaded.module(x)
                wall[name].append(time.perf_counter() - start_wall)
                cpu[name].append(time.process_time() - start_cpu)

    base_wall, base_cpu = min(wall["base"]), statistics.median(cpu["base"])
    print(
        f"model {args.model}, batch {args.batch_size}, {size} px, "
        f"{torch.get_num_threads()} threads, {args.rounds} interleaved rounds"
    )
    print(
        f"{'variant':<14} {'best wall ms':>12} {'ms/image':>9} {'ratio':>6} "
        f"{'median cpu ms':>14} {'ratio':>6}"
    )
    for name in variants:
        best, median_cpu = min(wall[name]), statistics.median(cpu[name])
        print(
            f"{name:<14} {1000 * best:>12.1f} {1000 * best / args.batch_size:>9.2f} "
            f"{best / base_wall:>6.2f} {1000 * median_cpu:>14.1f} {median_cpu / base_cpu:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(with_load_average(main))
