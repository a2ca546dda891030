"""`jaggy audit` against the study's own evaluation style, on the same views, in one run.

Usage: python benchmarks/reference.py [--images 24] [--rounds 3] [--device cpu]
       [--model jaggy:efficientnet_lite0] [--dtype float32] [--compile] [--warmup 1]

The study's style (its published evaluation loop): for every image and every shift, build the
shifted input with PIL from the decoded photo (centre square resized, then a 224 window cut out
for Crop, or the image resized to S and pasted on a black canvas for Black), convert it to a
tensor, normalise it, and run the model on a batch of one, in a Python loop. The audit makes
the same views on the device from one decoded image and batches them, with its automatic
configuration (--batch-size auto and --graph auto: the probe, and the build of each graph it
tries, ONNX Runtime's or the frozen one, included in its time). Both cover crop and black@140,
10 views each, on the same photos. The script also checks that the two see the same views
(agreement of the top-1 class over all views). Target: >= 1.5x on a CPU, >= 10x on a GPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch
import torchvision.transforms.functional as TF
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _bench import (  # noqa: E402
    Bench,
    interleaved,
    median,
    photo_folder,
    ratio_median,
    rounds_text,
    setup,
    spread,
)

from jaggy.data import discover_images  # noqa: E402
from jaggy.engine import AuditConfig
from jaggy.engine._runner import execute
from jaggy.engine._setup import AuditSetup
from jaggy.protocols import ProtocolOptions, build_protocols
from jaggy.protocols._paths import path_offsets

STEPS, SIZE = 10, 140
_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def study_style(loaded, folder: Path, device: torch.device) -> tuple[float, list[int]]:
    """Views/s of the batch-of-one PIL loop, and the top-1 class of every view (in the
    audit's row order: image, then crop views, then black views)."""
    prep = loaded.preprocessing
    r = prep.input_size
    resample = _FILTERS.get(prep.interpolation, Image.Resampling.BILINEAR)
    crop, black = build_protocols(
        ["crop", "black"], prep, ProtocolOptions(steps=STEPS, sizes=(SIZE,))
    )
    crop_origin, black_origin = crop._origin(), black._origin()
    background = (0, 0, 0)
    top1: list[int] = []
    views = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for item in discover_images(folder):
            photo = Image.open(item.path).convert("RGB")
            w, h = photo.size
            side = min(w, h)
            box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
            for protocol in (crop, black):
                # window offsets (crop) / image offsets (black) along the path, in px
                for ox, oy in path_offsets("diagonal", STEPS):
                    square = photo.crop(box)  # the per-view transform, from the photo
                    if protocol is crop:
                        big = square.resize((crop.side, crop.side), resample)
                        x0, y0 = crop_origin[0] + ox, crop_origin[1] + oy
                        view = big.crop((x0, y0, x0 + r, y0 + r))
                    else:
                        small = square.resize((SIZE, SIZE), resample)
                        view = Image.new("RGB", (r, r), background)
                        view.paste(small, (black_origin[0] + ox, black_origin[1] + oy))
                    x = TF.normalize(TF.to_tensor(view), prep.mean, prep.std)
                    probs = loaded.module(x[None].to(device)).float().softmax(-1)
                    top1.append(int(probs.topk(5, dim=-1).indices[0, 0]))
                    views += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return views / (time.perf_counter() - start), top1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jaggy:efficientnet_lite0")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", help="the audit's (the study ran float32)")
    parser.add_argument("--compile", action="store_true", help="torch.compile for the audit")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed rounds first (printed): the process's first audit pays the probe and "
        "the first forward of each shape, once per process (default 1)",
    )
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    with setup(args.model, args.device, "reference") as bench:
        return run(args, bench)


def run(args, bench: Bench) -> int:
    device, loaded, work = bench.device, bench.loaded, bench.work
    folder = photo_folder(work / "images", args.images)
    seen: dict = {}

    def audit() -> float:
        out = work / f"audit{len(seen)}"
        config = AuditConfig(
            model=args.model,
            data=str(folder),
            protocols=["crop", "black"],
            steps=STEPS,
            sizes=[SIZE],
            device=args.device,
            dtype=args.dtype,
            compile=args.compile,
            out=str(out),
        )
        start = time.perf_counter()
        result = execute(AuditSetup(config, loaded), progress=False)
        seconds = time.perf_counter() - start
        table = pq.read_table(out / "predictions.parquet")
        seen["audit"] = table.column("top1").to_pylist()
        manifest = result.manifest
        seen["chosen"] = (manifest.batch_size, manifest.memory_format, manifest.graph)
        shutil.rmtree(out)
        return table.num_rows / seconds

    def reference() -> float:
        rate, seen["reference"] = study_style(loaded, folder, device)
        return rate

    runs = {"audit (auto)": audit, "study style": reference}
    if args.warmup:
        print(f"warm-up ({args.warmup} untimed round(s): the process's first audit and loop)")
        first = interleaved(args.warmup, runs)
        print(f"   warm-up ratios: {rounds_text(first['audit (auto)'], first['study style'])}")
    results = interleaved(args.rounds, runs)
    agree = sum(a == b for a, b in zip(seen["audit"], seen["reference"], strict=True))
    ratio = ratio_median(results["audit (auto)"], results["study style"])
    print(
        f"\naudit {median(results['audit (auto)']):.2f} views/s {spread(results['audit (auto)'])}"
        f" (chose batch/format/graph {'/'.join(map(str, seen['chosen']))}), study style "
        f"{median(results['study style']):.2f} {spread(results['study style'])}"
    )
    print(f"same top-1 on {agree}/{len(seen['audit'])} views (the same views, batched or not)")
    target = 10 if device.type == "cuda" else 1.5
    print(f"round by round: {rounds_text(results['audit (auto)'], results['study style'])}")
    print(f"RATIO audit / study style = {ratio:.2f}x   (target >= {target}x on {device.type})")
    if args.json:
        ratios = [
            a / b for a, b in zip(results["audit (auto)"], results["study style"], strict=True)
        ]
        Path(args.json).write_text(
            json.dumps(
                {
                    **results,
                    "ratio": ratio,
                    "ratio_min": min(ratios),
                    "agree": agree,
                    "views": len(seen["audit"]),
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
