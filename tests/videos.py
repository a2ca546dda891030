"""Test videos made with PyAV: a real photo filmed along a known camera path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FRAME_W, FRAME_H = 96, 72  # px of each video frame
N_FRAMES = 12


def photo() -> np.ndarray:
    """scikit-image's chelsea (451 x 300 RGB), a real photo."""
    import skimage.data

    return skimage.data.chelsea()


def camera_path(n: int = N_FRAMES) -> list[tuple[int, int]]:
    """Top-left corner (x, y) of the camera window at frame k: a pan right and down, 9 px
    right and 4 px down per frame, with a pause (k = 5 repeats k = 4) to make a still pair."""
    path = []
    for k in range(n):
        step = k if k < 5 else k - 1
        path.append((20 + 9 * step, 30 + 4 * step))
    return path


def camera_frames(
    n: int = N_FRAMES, size: tuple[int, int] = (FRAME_W, FRAME_H)
) -> list[np.ndarray]:
    """The frames the camera sees: windows of the photo along `camera_path`, [H, W, 3] uint8."""
    image = photo()
    w, h = size
    return [image[y : y + h, x : x + w].copy() for x, y in camera_path(n)]


def write_video(
    path: Path,
    frames: list[np.ndarray],
    *,
    codec: str = "ffv1",
    pix_fmt: str = "bgr0",
    rate: int = 10,
) -> Path:
    """Encode `frames` with PyAV. The default (FFV1, RGB) is lossless, so decoded frames equal
    `frames` exactly; ('libx264', 'yuv420p') in an .mp4 gives an ordinary lossy video."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        for array in frames:
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frame_folder(folder: Path, frames: list[np.ndarray], ext: str = ".png") -> Path:
    """The same frames as image files named frame1, frame2, ..., frame12 (natural order
    differs from the names' lexicographic order)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, array in enumerate(frames, start=1):
        Image.fromarray(array).save(folder / f"frame{k}{ext}")
    return folder


def write_audio_only(path: Path, seconds: float = 0.2) -> Path:
    """A media file with one audio stream and no video (an unsupported input)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        stream.layout = "mono"
        samples = np.zeros((1, int(8000 * seconds)), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def region_colour_net():
    """A tiny 1000-class classifier of the mean colours of a 4 x 4 grid of regions, with
    sharp random weights, so a panning camera changes its answer (loadable as the model spec
    `py:videos:region_colour_net`)."""
    import torch
    from torch import nn

    torch.manual_seed(7)
    net = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 1000))
    with torch.no_grad():
        net[2].weight.mul_(40.0)
    net.jaggy_preprocessing = {
        "input_size": 32,
        "crop_pct": 0.875,
        "interpolation": "bilinear",
        "mean": (0.5, 0.5, 0.5),
        "std": (0.25, 0.25, 0.25),
    }
    return net
