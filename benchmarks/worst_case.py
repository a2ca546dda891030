"""Worst-case search: early exit against the exhaustive search, and the exhaustive search
against a bare `model(x)` loop, in one run.

Usage: python benchmarks/worst_case.py [--images 5] [--rounds 1] [--batch-size 8]
       [--memory-format channels_last] [--kind circular] [--device cpu]

Every round runs, interleaved (order rotated each round, see _bench.py):
1. `jaggy audit --worst-case KIND` with early exit (the default) on the sample photos,
2. the same with `--exhaustive` (every view of the set: 962 views per image for circular),
3. a bare loop of model(x) over as many views as the exhaustive search computes, at the same
   batch size, memory format, dtype and device.
It checks that both searches give every image the same robust / not-robust answer and the
same first failing shift, and prints the speed-up of the early exit (exhaustive time / early
time, whole audits) and the ratio exhaustive audit rate / bare rate (target >= 0.95).
Rates are views / wall time of the whole audit (setup, decoding, view making, inference,
merge, metrics, summary, manifest).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _bench import (  # noqa: E402
    Bench,
    bare_forward_rate,
    interleaved,
    median,
    photo_folder,
    ratio_median,
    setup,
    spread,
)

from jaggy.engine import AuditConfig  # noqa: E402
from jaggy.engine._runner import execute  # noqa: E402
from jaggy.engine._setup import AuditSetup  # noqa: E402
from jaggy.results import read_metrics  # noqa: E402


class Search:
    """Complete worst-case audits of one folder with one loaded model."""

    def __init__(self, loaded, folder: Path, work: Path, args):
        self.loaded, self.folder, self.work, self.args = loaded, folder, work, args
        self.count = 0
        self.answers: dict[bool, list] = {}
        self.views: dict[bool, int] = {}
        self.seconds: dict[bool, list[float]] = {True: [], False: []}
        self.set_views = 0

    def rate(self, exhaustive: bool) -> float:
        """Views per second of the whole audit, counting every view of the set (so the two
        searches are on one scale: the early exit does the same job with fewer views)."""
        self.count += 1
        out = self.work / f"audit{self.count}"
        config = AuditConfig(
            model=self.args.model,
            data=str(self.folder),
            protocols=[],
            worst_case=[self.args.kind],
            exhaustive=exhaustive,
            batch_size=self.args.batch_size,
            memory_format=self.args.memory_format,
            device=self.args.device,
            dtype=self.args.dtype,
            out=str(out),
        )
        start = time.perf_counter()
        audit = AuditSetup(config, self.loaded)
        execute(audit, progress=False)
        seconds = time.perf_counter() - start
        table = read_metrics(out).to_pandas().sort_values("image_id")
        self.answers[exhaustive] = table[["image_id", "robust_accuracy", "failing_shift"]]
        self.views[exhaustive] = int(table["n_views"].sum())
        self.set_views = len(audit.items) * audit.views_per_image()
        self.seconds[exhaustive].append(seconds)
        shutil.rmtree(out)
        return self.set_views / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jaggy:efficientnet_lite0")
    parser.add_argument("--images", type=int, default=5, help="sample photos, cycled")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--memory-format", default="channels_last")
    parser.add_argument("--kind", default="circular")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args(argv)
    with setup(args.model, args.device, "worst") as bench:
        return run(args, bench)


def run(args, bench: Bench) -> int:
    device, loaded, module, side, work = bench.parts()
    folder = photo_folder(work / "images", args.images)
    search = Search(loaded, folder, work, args)
    print(
        f"--worst-case {args.kind} on {args.images} photos, batch {args.batch_size}, "
        f"{args.memory_format}, {args.dtype}, {device}"
    )
    bare_views: list[int] = []

    def bare() -> float:
        views = search.views.get(True) or args.images * 962
        bare_views.append(views)
        return bare_forward_rate(
            module,
            batch_size=args.batch_size,
            n_views=views,
            input_size=side,
            memory_format=args.memory_format,
            dtype=args.dtype,
            device=device,
        )

    rates = interleaved(
        args.rounds,
        {
            "early exit": lambda: search.rate(False),
            "exhaustive": lambda: search.rate(True),
            "bare model(x)": bare,
        },
    )
    early, full = search.answers[False], search.answers[True]
    same = early["robust_accuracy"].tolist() == full["robust_accuracy"].tolist() and (
        early["failing_shift"].fillna(-1).tolist() == full["failing_shift"].fillna(-1).tolist()
    )
    speedup = ratio_median(search.seconds[True], search.seconds[False])
    # the exhaustive search computes every view: its rate is views computed / wall time
    throughput = ratio_median(rates["exhaustive"], rates["bare model(x)"])
    robust = float(full["robust_accuracy"].mean())
    print(
        f"\n   views computed: early exit {search.views[False]}, exhaustive {search.views[True]} "
        f"(of {search.set_views}); robust images {robust:.2f}"
    )
    print(f"   same robust answers and first failing shifts: {same}")
    print(
        f"   early exit {median(search.seconds[False]):.1f} s {spread(search.seconds[False])}, "
        f"exhaustive {median(search.seconds[True]):.1f} s {spread(search.seconds[True])}"
    )
    print(f"   SPEED-UP early exit / exhaustive = {speedup:.2f}x")
    print(
        f"   exhaustive {median(rates['exhaustive']):.2f} views/s, bare "
        f"{median(rates['bare model(x)']):.2f} views/s"
    )
    print(f"   RATIO exhaustive audit / bare = {throughput:.3f}   (target >= 0.95)")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rates": rates,
                    "seconds": {str(k): v for k, v in search.seconds.items()},
                    "views": {str(k): v for k, v in search.views.items()},
                    "same_answers": same,
                    "speedup": speedup,
                    "throughput_ratio": throughput,
                },
                indent=1,
            )
        )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
