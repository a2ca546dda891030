"""Scaling: one process against two torchrun ranks on this machine, same audit, one run.

Usage: python benchmarks/scaling.py [--images 32] [--rounds 2] [--batch-size auto]
       [--model jaggy:efficientnet_lite0] [--ranks 2]

Both sides are complete command-line audits in fresh processes (`python -m jaggy audit` and
`torchrun --standalone --nproc-per-node 2 -m jaggy audit`), crop + black@140 with 10 views
each. One process uses torch's default CPU threads (every core); torchrun gives each rank one
thread (its OMP_NUM_THREADS default), so on a 2-core machine both sides use both cores and the
ratio shows what sharding costs or gains, not extra hardware. Reported: views/s over the whole
command (start-up included) and over the audit itself (run.json's session time), interleaved
round by round, medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _bench import machine, median, photo_folder, ratio_median, spread, with_load_average  # noqa: E402


def audit(args, folder: Path, out: Path, ranks: int) -> dict:
    command = [sys.executable]
    if ranks > 1:
        command += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    command += ["-m", "jaggy", "audit", args.model, str(folder), "--out", str(out)]
    command += ["--protocol", "crop", "--protocol", "black", "--size", "140", "--steps", "10"]
    command += ["--batch-size", args.batch_size, "--chunk-images", str(args.chunk_images)]
    command += ["--no-progress"]
    env = dict(os.environ)
    if ranks > 1:
        env.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    record = json.loads((out / "run.json").read_text())
    views = args.images * 20
    session = record["sessions"][-1]
    result = {
        "wall": views / wall,
        "audit": views / session["seconds"],
        "batch_size": record["batch_size"],
        "memory_format": record["memory_format"],
        "chunks_by_rank": session["chunks_by_rank"],
    }
    shutil.rmtree(out)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jaggy:efficientnet_lite0")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--chunk-images", type=int, default=4)
    args = parser.parse_args(argv)

    import torch

    work = Path(tempfile.mkdtemp(prefix="jaggy-scaling-"))
    folder = photo_folder(work / "images", args.images)
    print(json.dumps({"machine": machine(torch.device("cpu")), "model": args.model}, indent=1))
    results: dict[int, list[dict]] = {1: [], args.ranks: []}
    for r in range(args.rounds):
        for ranks in (1, args.ranks) if r % 2 == 0 else (args.ranks, 1):
            result = audit(args, folder, work / "out", ranks)
            results[ranks].append(result)
            print(
                f"  round {r + 1}  {ranks} rank(s): {result['wall']:.2f} views/s whole command, "
                f"{result['audit']:.2f} in the audit (batch {result['batch_size']}/"
                f"{result['memory_format']}, chunks per rank {result['chunks_by_rank']})",
                flush=True,
            )
    for key, what in (("wall", "whole command"), ("audit", "audit session")):
        one = [r[key] for r in results[1]]
        many = [r[key] for r in results[args.ranks]]
        print(
            f"{what}: 1 rank {median(one):.2f} views/s {spread(one)}, {args.ranks} ranks "
            f"{median(many):.2f} {spread(many)}; RATIO {args.ranks}/1 = "
            f"{ratio_median(many, one):.2f}"
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(with_load_average(main))
