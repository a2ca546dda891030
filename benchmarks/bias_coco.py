"""Reading and summarising a COCO-style JSON of one million boxes, side by side with
`pycocotools.coco.COCO(file)` loading and indexing the same file.

Usage: python benchmarks/bias_coco.py [--boxes 1000000] [--images 100000] [--rounds 3]
       [--keep FILE]

The file is generated once (seeded): `--images` images of 320-640 px, 80 categories, boxes
with id, image_id, category_id, bbox, area, iscrowd and a polygon `segmentation`, like COCO's
instances files. Each measurement runs in a fresh subprocess, so that one cannot warm the
other's caches or hide its memory; rounds alternate the order (jaggy first, then pycocotools
first, ...). Per subprocess: seconds for the work alone (after imports) and the peak resident
set size (ru_maxrss) together with the resident size before the work.

jaggy's side is `read_annotations` + every statistic of bias.json (image frame, histograms,
per class), and separately the whole `run_bias` without figures (adds boxes.parquet).
Targets: read + summarise under 30 s, and no slower than pycocotools (ratio <= 1).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def generate(path: Path, n_boxes: int, n_images: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    widths = rng.integers(320, 641, n_images)
    heights = rng.integers(320, 641, n_images)
    image_of = rng.integers(0, n_images, n_boxes)
    w_img, h_img = widths[image_of], heights[image_of]
    bw = np.round(rng.uniform(0.02, 0.9, n_boxes) * w_img, 2)
    bh = np.round(rng.uniform(0.02, 0.9, n_boxes) * h_img, 2)
    x = np.round(rng.uniform(0, 1, n_boxes) * (w_img - bw), 2)
    y = np.round(rng.uniform(0, 1, n_boxes) * (h_img - bh), 2)
    category = rng.integers(1, 81, n_boxes)
    with path.open("w") as out:
        out.write('{"info": {"description": "jaggy benchmark"}, "images": [')
        out.write(
            ", ".join(
                f'{{"id": {i}, "file_name": "{i:012d}.jpg", "width": {w}, "height": {h}}}'
                for i, (w, h) in enumerate(zip(widths.tolist(), heights.tolist(), strict=True))
            )
        )
        out.write('], "categories": [')
        out.write(
            ", ".join(
                f'{{"id": {c}, "name": "class{c}", "supercategory": "s"}}' for c in range(1, 81)
            )
        )
        out.write('], "annotations": [')
        rows = zip(
            image_of.tolist(),
            category.tolist(),
            x.tolist(),
            y.tolist(),
            bw.tolist(),
            bh.tolist(),
            strict=True,
        )
        first = True
        for k, (i, c, x0, y0, w, h) in enumerate(rows):
            x1, y1 = round(x0 + w, 2), round(y0 + h, 2)
            out.write(
                ("" if first else ", ") + f'{{"id": {k}, "image_id": {i}, "category_id": {c}, '
                f'"segmentation": [[{x0}, {y0}, {x1}, {y0}, {x1}, {y1}, {x0}, {y1}]], '
                f'"area": {round(w * h * 0.8, 2)}, "bbox": [{x0}, {y0}, {w}, {h}], '
                f'"iscrowd": 0}}'
            )
            first = False
        out.write("]}")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(kind: str, file: str) -> None:
    """One measurement (the subprocess side); prints JSON."""
    if kind == "coco":
        import contextlib
        import io

        from pycocotools.coco import COCO

        before = _rss_mib()
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(file)
        seconds = time.perf_counter() - start
        extra = {"n_boxes": len(coco.anns)}
    elif kind == "jaggy":
        from jaggy.bias._run import image_geometry, summarize
        from jaggy.data.annotations import read_annotations

        before = _rss_mib()
        start = time.perf_counter()
        annotations = read_annotations(file)
        read_seconds = time.perf_counter() - start
        stats = summarize(annotations, image_geometry(annotations))
        seconds = time.perf_counter() - start
        extra = {"n_boxes": stats["n_boxes"], "read_seconds": round(read_seconds, 3)}
    else:  # "jaggy-run": everything `jaggy bias --no-figures` does
        from jaggy.bias import run_bias

        before = _rss_mib()
        out = tempfile.mkdtemp(prefix="jaggy-bias-bench-")
        start = time.perf_counter()
        result = run_bias(file, out, figures=False)
        seconds = time.perf_counter() - start
        extra = {"n_boxes": result.statistics["n_boxes"]}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "before_mib": before, **extra}))


def measure(kind: str, file: Path) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(file)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", help="generate into (or reuse) this file")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    folder = tempfile.mkdtemp(prefix="jaggy-bias-bench-")
    file = Path(args.keep) if args.keep else Path(folder) / "instances.json"
    if not file.exists():
        start = time.perf_counter()
        generate(file, args.boxes, args.images)
        print(f"generated {file} in {time.perf_counter() - start:.1f} s", flush=True)
    print(
        f"{args.boxes} boxes on {args.images} images, {file.stat().st_size / 2**20:.0f} MiB; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows: dict[str, list[dict]] = {"jaggy": [], "coco": [], "jaggy-run": []}
    ratios = []
    for r in range(args.rounds):
        order = ["jaggy", "coco"] if r % 2 == 0 else ["coco", "jaggy"]
        got = {kind: measure(kind, file) for kind in order}
        got["jaggy-run"] = measure("jaggy-run", file)
        for kind, value in got.items():
            rows[kind].append(value)
        ratios.append(got["jaggy"]["seconds"] / got["coco"]["seconds"])
        print(
            f"round {r}: jaggy read+summarise {got['jaggy']['seconds']:.2f} s "
            f"(read {got['jaggy']['read_seconds']:.2f} s, peak {got['jaggy']['peak_mib']:.0f} "
            f"MiB), pycocotools COCO() {got['coco']['seconds']:.2f} s (peak "
            f"{got['coco']['peak_mib']:.0f} MiB), run_bias {got['jaggy-run']['seconds']:.2f} s "
            f"(peak {got['jaggy-run']['peak_mib']:.0f} MiB); ratio {ratios[-1]:.3f}",
            flush=True,
        )
    median = {k: statistics.median(v["seconds"] for v in rows[k]) for k in rows}
    peak = {k: max(v["peak_mib"] for v in rows[k]) for k in rows}
    before = {k: statistics.median(v["before_mib"] for v in rows[k]) for k in rows}
    assert rows["jaggy"][0]["n_boxes"] == rows["coco"][0]["n_boxes"] == args.boxes
    print(
        json.dumps(
            {
                "boxes": args.boxes,
                "images": args.images,
                "file_mib": round(file.stat().st_size / 2**20, 1),
                "median_seconds": {k: round(v, 3) for k, v in median.items()},
                "ratio_jaggy_to_pycocotools_median": round(statistics.median(ratios), 3),
                "ratios": [round(r, 3) for r in ratios],
                "peak_rss_mib": {k: round(v) for k, v in peak.items()},
                "rss_before_work_mib": {k: round(v) for k, v in before.items()},
                "under_30_s": median["jaggy"] < 30,
                "no_slower_than_pycocotools": statistics.median(ratios) <= 1.0,
            },
            indent=2,
        )
    )
    if not args.keep:
        file.unlink()
    return 0


def _load_average() -> str:
    # printed at the start and the end (as _bench does, without importing torch here)
    return (
        " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" (1, 5, 15 min; {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    print(f"load average at the start: {_load_average()}", flush=True)
    try:
        code = main()
    finally:
        print(f"load average at the end: {_load_average()}", flush=True)
    raise SystemExit(code)
