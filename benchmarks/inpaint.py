"""The `inpaint` protocol's views: whole-canvas rounds (the tests' reference) against jaggy's
rounds restricted to where a round can change a pixel, in one run.

Usage: python benchmarks/inpaint.py [--rounds 5] [--steps 10] [--threads 1]

The demo's geometry: a 224 px canvas, sizes 172/140/117, 10 views along the diagonal, the
sample photos (scikit-image, matplotlib) decoded as the engine decodes them. Each round makes
every image's views with both implementations, interleaved (order rotated each round); the
script prints ms per view of each, per size and in all, the round-by-round ratios
(reference / jaggy), and how far jaggy's views are from the reference's: float32 views that
differ, and the largest difference of the float64 inpainted canvases.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "protocols"))
from _bench import machine, median, ratio_median, rounds_text  # noqa: E402
from inpaint_reference import reference_inpaint, reference_make_views  # noqa: E402

from jaggy.data import sample_paths  # noqa: E402
from jaggy.data._decode import decode_sources  # noqa: E402
from jaggy.models import Preprocessing  # noqa: E402
from jaggy.protocols import ProtocolOptions, build_protocols  # noqa: E402
from jaggy.protocols.embed import inpaint  # noqa: E402

SIZES = (172, 140, 117)
# efficientnet_lite0's preprocessing (the demo's model)
PREP = Preprocessing(
    input_size=224,
    interpolation="bicubic",
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    crop_pct=0.875,
)


def sources(steps: int):
    """(protocol, normalised source) of every size x sample photo."""
    out = []
    protocols = build_protocols(["inpaint"], PREP, ProtocolOptions(sizes=SIZES, steps=steps))
    for protocol in protocols:
        for path in sorted(sample_paths().values()):
            decoded, _ = decode_sources(
                path, [protocol.source()], PREP.interpolation, PREP.crop_pct
            )
            out.append((protocol, PREP.normalize(decoded[protocol.source().key])))
    return out


def timed(make, work) -> dict[int, float]:
    """Seconds per size for making every image's views with `make`."""
    spent = dict.fromkeys(SIZES, 0.0)
    for protocol, source in work:
        n = len(protocol.view_params())
        start = time.perf_counter()
        make(protocol, source, range(n))
        spent[protocol.size] += time.perf_counter() - start
    return spent


def differences(work) -> tuple[int, int, float]:
    """Float32 view values that differ from the reference's, of how many, and the largest
    difference of the float64 inpainted canvases (0..255 pixel values)."""
    differ = total = 0
    largest = 0.0
    for protocol, source in work:
        n = len(protocol.view_params())
        got = protocol.make_views(source, range(n))
        expected = reference_make_views(protocol, source, range(n))
        differ += int((got != expected).sum())
        total += got.numel()
        pixels = (PREP.to_pixels(source) * 255).round().clamp(0, 255)
        canvas, mask = protocol.paste(pixels, range(n))
        canvas, mask = canvas.double(), mask.double()
        gap = (inpaint(canvas, mask) - reference_inpaint(canvas, mask)).abs().max()
        largest = max(largest, float(gap))
    return differ, total, largest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"machine: {machine(torch.device('cpu'))}")
    print(f"load average at start: {os.getloadavg()}")
    work = sources(args.steps)
    views = {s: sum(len(p.view_params()) for p, _ in work if p.size == s) for s in SIZES}
    total = sum(views.values())
    print(f"{len(work)} images x sizes {SIZES}, {total} views, canvas {PREP.input_size} px")
    runs = {
        "reference (whole canvas)": reference_make_views,
        "jaggy": lambda p, s, i: p.make_views(s, i),
    }
    times: dict[str, list[dict[int, float]]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(args.rounds):
        for name in names[r % 2 :] + names[: r % 2]:
            spent = timed(runs[name], work)
            times[name].append(spent)
            per_view = sum(spent.values()) / total * 1e3
            print(f"  round {r + 1}/{args.rounds}  {name:<26} {per_view:8.2f} ms/view", flush=True)
    ref, new = (times[n] for n in names)
    print("\nms per view (median over rounds):")
    for s in SIZES:
        a = median([t[s] / views[s] * 1e3 for t in ref])
        b = median([t[s] / views[s] * 1e3 for t in new])
        print(f"  size {s}: reference {a:7.2f}  jaggy {b:6.2f}  ratio {a / b:5.1f}")
    ref_all = [sum(t.values()) / total * 1e3 for t in ref]
    new_all = [sum(t.values()) / total * 1e3 for t in new]
    print(f"  all:      reference {median(ref_all):7.2f}  jaggy {median(new_all):6.2f}")
    print(f"ratio reference / jaggy per view: {ratio_median(ref_all, new_all):.1f}")
    print(f"  rounds: {rounds_text(ref_all, new_all)}")
    print(f"jaggy, {total} views: {median(new_all) * total / 1e3:.3f} s")
    differ, values, largest = differences(work)
    print(f"float32 view values that differ from the reference's: {differ} of {values}")
    print(f"largest difference of the float64 inpainted canvases: {largest:.3g}")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
