"""Video decoding against inference: does reading a video slow the audit down?

The same lite0 audit (`--protocol video`, one 640x480 H.264 video made from a real photo
panned across, `FRAMES` frames) is run three ways, interleaved round by round:

- `video`: the engine as users run it: PyAV decodes the file sequentially, each frame is
  converted to RGB and resized once to the model's input;
- `decoded`: the same frames already decoded to RGB in memory (decoded once before timing):
  each frame is still resized as in `video`, so the difference is the decoding alone;
- `prepared`: the model inputs already prepared in memory (no decoding, no resizing), for
  reference.

Each run's compute time (the engine's chunk loop, `AuditResult.timings['compute']`) is
compared: the target is `video` / `decoded` < 1.10 (decoding adds under 10%). Printed as the
median of the round-by-round ratios.

    .venv/bin/python benchmarks/video_decode.py [--frames 120] [--rounds 3] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _bench import machine, median, ratio_median, spread, with_load_average  # noqa: E402

from jaggy.data._dataset import DecodedImage
from jaggy.data._decode import prepare_source  # noqa: E402
from jaggy.data._video import VideoDataset
from jaggy.engine import AuditConfig
from jaggy.engine._runner import execute
from jaggy.engine._setup import AuditSetup
from jaggy.protocols import SourceRequest  # noqa: E402

WIDTH, HEIGHT = 640, 480


def write_pan_video(path: Path, frames: int) -> list[np.ndarray]:
    """A 640x480 H.264 (yuv420p) video panning across a real photo; returns its frames as
    PyAV decodes them (RGB), which the in-memory runs use."""
    import av
    import skimage.data

    photo = Image.fromarray(skimage.data.astronaut()).resize((1024, 1024), Image.BICUBIC)
    pixels = np.asarray(photo)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for k in range(frames):
            x = int(round((1024 - WIDTH) * k / max(frames - 1, 1)))
            y = int(round((1024 - HEIGHT) * k / max(frames - 1, 1)))
            window = np.ascontiguousarray(pixels[y : y + HEIGHT, x : x + WIDTH])
            for packet in stream.encode(av.VideoFrame.from_ndarray(window, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    decoded = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            decoded.append(frame.to_ndarray(format="rgb24"))
    return decoded


class DecodedFrames(VideoDataset):
    """The video's frames already decoded (RGB arrays in memory): only the resize remains."""

    frames: list[np.ndarray] = []

    def __getitem__(self, i: int) -> DecodedImage:
        item = self.items[i]
        sources = {}
        for request in self.requests:
            per_frame = SourceRequest("standard", request.side)
            sources[request.key] = torch.stack(
                [
                    prepare_source(Image.fromarray(f), per_frame, self.interpolation, self.crop_pct)
                    for f in self.frames
                ]
            )
        return DecodedImage(item, sources)


class PreparedFrames(VideoDataset):
    """The model inputs already prepared in memory: no decoding, no resizing."""

    sources: dict = {}

    def __getitem__(self, i: int) -> DecodedImage:
        return DecodedImage(self.items[i], dict(self.sources))


class BenchSetup(AuditSetup):
    dataset_class = None

    def dataset(self, items):
        made = super().dataset(items)
        if self.dataset_class is None:
            return made
        return self.dataset_class(
            made.items, made.requests, made.interpolation, made.crop_pct, made.selection
        )


def decoding_costs(video: Path, setup: AuditSetup, repeats: int = 3) -> dict[str, float]:
    """Milliseconds per frame, without the model: decoding + RGB conversion (PyAV) and the
    resize to the model's input (the best of `repeats` passes over the whole video)."""
    import av

    request = SourceRequest("standard", setup.loaded.preprocessing.input_size)
    prep = setup.loaded.preprocessing
    best = {"decode": float("inf"), "resize": float("inf")}
    for _ in range(repeats):
        started = time.perf_counter()
        with av.open(str(video)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        best["decode"] = min(best["decode"], (time.perf_counter() - started) / len(frames))
        started = time.perf_counter()
        for f in frames:
            prepare_source(Image.fromarray(f), request, prep.interpolation, prep.crop_pct)
        best["resize"] = min(best["resize"], (time.perf_counter() - started) / len(frames))
    return {k: 1000 * v for k, v in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--memory-format", default="channels_last")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        video = root / "clips" / "pan.mp4"
        video.parent.mkdir()
        started = time.perf_counter()
        DecodedFrames.frames = write_pan_video(video, args.frames)
        print(
            f"wrote {video.name}: {args.frames} frames {WIDTH}x{HEIGHT} H.264 "
            f"({video.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)"
        )

        def setup(name: str) -> BenchSetup:
            config = AuditConfig(
                model="jaggy:efficientnet_lite0",
                data=str(video.parent),
                protocols=["video"],
                batch_size=args.batch_size,
                memory_format=args.memory_format,
                device=args.device,
                chunk_images=1,
                out=str(root / f"{name}-0"),
            )
            made = BenchSetup(config)
            made.dataset_class = {
                "video": None,
                "decoded": DecodedFrames,
                "prepared": PreparedFrames,
            }[name]
            return made

        setups = {name: setup(name) for name in ("video", "decoded", "prepared")}
        components = decoding_costs(video, setups["video"])
        plain = setups["video"].dataset(setups["video"].items)
        PreparedFrames.sources = plain[0].sources
        times: dict[str, list[float]] = {name: [] for name in setups}
        for r in range(args.rounds + 1):  # round 0 warms up (kernels, caches)
            names = list(setups)
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                made = setups[name]
                made.config.out = str(root / f"{name}-{r + 1}")
                result = execute(made, progress=False)
                seconds = result.timings["compute"]
                rows = result.summary["protocols"]["video"]["n_images"]
                assert rows == 1, "the video was not read"
                if r:
                    times[name].append(seconds)
                label = "warm-up" if r == 0 else f"round {r}/{args.rounds}"
                print(
                    f"  {label:<12} {name:<9} {seconds:6.2f} s  "
                    f"({args.frames / seconds:5.1f} frames/s)",
                    flush=True,
                )
    print("\nmachine:", machine(device))
    print(
        f"lite0, batch {args.batch_size}, {args.memory_format}, {args.frames} frames of "
        f"{WIDTH}x{HEIGHT}, workers: the engine's default"
    )
    for name, values in times.items():
        print(f"  {name:<9} median {median(values):6.2f} s  {spread(values)}")
    print(
        f"per frame, best of 3 (no model): decode + RGB {components['decode']:.2f} ms, "
        f"resize {components['resize']:.2f} ms"
    )
    decode = ratio_median(times["video"], times["decoded"])
    whole = ratio_median(times["video"], times["prepared"])
    print(
        f"\nvideo / decoded in memory : {decode:.3f}   (target < 1.10: decoding adds "
        f"{100 * (decode - 1):.1f}%)"
    )
    print(f"video / prepared in memory: {whole:.3f}   (decoding and resizing together)")


if __name__ == "__main__":
    raise SystemExit(with_load_average(main))
