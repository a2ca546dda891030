"""Videos and folders of frames as sequences of model inputs (the `video` protocol's sources).

A *sequence* is a video file (decoded with PyAV, which bundles its own FFmpeg) or a folder of
frame images (sorted naturally: frame2 before frame10). Its frames are read in order, once:
a video is decoded sequentially from its first frame (no seeking, so every decoder gives the
same frames), frames before `start` and between strides are decoded and dropped, and each kept
frame is converted to RGB once and resized once, straight to the model's standard input
(shorter side floor(R / crop_pct), centre crop R), exactly as a still image would be. A
sequence becomes one uint8 tensor [V, 3, R, R] handed to the engine like an image's source.

Colour: YUV frames are converted to 8-bit RGB by libswscale with the colour matrix and range
the file declares; where it declares none, BT.601 and limited ("tv") range, swscale's defaults,
and the note recorded for the video says so.

A file that cannot be opened, has no video stream, stops decoding with an error, or holds
fewer frames than its container lists (truncated) raises VideoDecodeError with the reason; the
run records it and goes on.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from ..models._classes import imagenet_class_index
from ..protocols import SourceRequest
from ._dataset import SourceDataset
from ._decode import ImageDecodeError, decode_image, prepare_source, to_chw
from ._items import IMAGE_EXTENSIONS, ImageItem

VIDEO_EXTENSIONS = (
    ".mp4",
    ".m4v",
    ".mov",
    ".webm",
    ".mkv",
    ".avi",
    ".mpg",
    ".mpeg",
    ".ts",
    ".ogv",
    ".wmv",
    ".flv",
    ".3gp",
)
MAX_SEQUENCE_BYTES = 2**30  # frames of one sequence in memory; longer ones are refused

# AVColorSpace values (as frames report them) -> libswscale's colour matrices.
_SWS_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020"}
_MATRIX_NAME = {
    "ITU709": "BT.709",
    "FCC": "FCC",
    "ITU601": "BT.601",
    "SMPTE240M": "SMPTE 240M",
    "BT2020": "BT.2020",
}


class VideoDecodeError(ImageDecodeError):
    """A video or frame folder that cannot be used; the message is the recorded reason."""


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of a sequence are read: numbers start, start + stride, ... (counting the
    decoded frames from 0), at most `max_frames` of them (None: to the end)."""

    start: int = 0
    stride: int = 1
    max_frames: int | None = None

    def keeps(self, number: int) -> bool:
        return number >= self.start and (number - self.start) % self.stride == 0

    def frame_number(self, view: int) -> int:
        """The frame number of view `view` of a sequence."""
        return self.start + view * self.stride

    def describe(self) -> dict:
        return {"start": self.start, "stride": self.stride, "max_frames": self.max_frames}


def natural_key(text: str) -> list:
    """Sort key that orders digits by value: frame2 < frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def frame_files(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, in natural order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: natural_key(p.name))


def discover_videos(
    data: str | os.PathLike | None,
    *,
    labels: str | os.PathLike | None = None,
    limit: int | None = None,
) -> list[ImageItem]:
    """List the sequences of a run, in a stable (natural) order.

    Args:
        data: a video file, a folder of frame images (one sequence), or a folder searched
            recursively for video files and for folders of frames (each one sequence).
        labels: CSV/TSV mapping a sequence (its id, file or folder name, or name without
            extension) to a class (index, synset id or class name).
        limit: keep the first `limit` sequences.

    A sequence's label is the class named by the folder that holds it (ImageNet-P's layout,
    e.g. `translate/n01440764/ILSVRC2012_val_00000293.mp4`), else -1; `--labels` overrides.
    The sequence's id is its path relative to `data` (its name when `data` is the sequence).
    """
    if data is None:
        raise DataError("the video protocol needs DATA: a video, a folder of frames or of videos")
    root = Path(data)
    if not root.exists():
        raise DataError(f"'{data}' does not exist; give a video file or a folder")
    if root.is_file():
        if root.suffix.lower() not in VIDEO_EXTENSIONS:
            raise DataError(
                f"'{data}' is not a video ({', '.join(VIDEO_EXTENSIONS)}); give a video file, "
                "a folder of frames or a folder of videos"
            )
        entries = [(root.name, root)]
    elif frame_files(root) and not any(is_video_file(p) for p in root.iterdir()):
        entries = [(root.name or str(root), root)]
    else:
        entries = []
        for folder, dirs, files in os.walk(root):
            dirs.sort(key=natural_key)
            here = Path(folder)
            if here != root and frame_files(here):
                entries.append((here.relative_to(root).as_posix(), here))
            for name in sorted(files, key=natural_key):
                path = here / name
                if path.suffix.lower() in VIDEO_EXTENSIONS:
                    entries.append((path.relative_to(root).as_posix(), path))
        entries.sort(key=lambda e: natural_key(e[0]))
    if not entries:
        raise DataError(
            f"no videos or folders of frames found in '{data}' "
            f"(looked for {', '.join(VIDEO_EXTENSIONS)} and folders of images)"
        )
    mapping = _read_label_file(Path(labels)) if labels is not None else {}
    items = []
    for image_id, path in entries:
        label = _folder_label(path)
        for key in (image_id, path.name, path.stem):
            if key in mapping:
                label = mapping[key]
                break
        items.append((image_id, str(path), label))
    if limit is not None:
        if limit < 1:
            raise DataError(f"--images must be at least 1 (got {limit})")
        items = items[:limit]
    return [ImageItem(i, image_id, path, label) for i, (image_id, path, label) in enumerate(items)]


def _folder_label(path: Path) -> int:
    index = imagenet_class_index(path.parent.name) if path.parent.name else None
    return -1 if index is None else int(index)


def _parse_class(text: str, where: str) -> int:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    index = imagenet_class_index(text)
    if index is None:
        raise DataError(f"{where}: unknown class '{text}' (use an index, a synset id or a name)")
    return int(index)


def _read_label_file(path: Path) -> dict[str, int]:
    if not path.is_file():
        raise DataError(f"--labels file '{path}' does not exist")
    mapping: dict[str, int] = {}
    with path.open(newline="") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        dialect = csv.excel_tab if "\t" in sample else csv.excel
        for number, row in enumerate(csv.reader(handle, dialect), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise DataError(f"{path}:{number}: expected 'video,class'")
            try:
                mapping[row[0].strip()] = _parse_class(row[1], f"{path}:{number}")
            except DataError:
                if number == 1:  # a header row
                    continue
                raise
    return mapping


def decoder_description() -> dict:
    """The decoder and its versions, for the manifest."""
    try:
        import av
    except ImportError:
        return {"decoder": "PyAV", "version": "not installed"}
    libraries = {
        name: ".".join(str(v) for v in version) for name, version in av.library_versions.items()
    }
    return {
        "decoder": "PyAV",
        "version": av.__version__,
        "ffmpeg": getattr(av, "ffmpeg_version_info", None),
        "libraries": libraries,
        "colour_conversion": "libswscale to 8-bit RGB (rgb24) with the colour matrix and range "
        "each file declares; BT.601, limited range where it declares none",
        "frame_folders": "decoded as still images (Pillow), in natural order",
    }


def _import_av():
    try:
        import av
    except ImportError as exc:
        raise DataError(
            "reading videos needs PyAV: pip install 'jaggy[video]' (or pip install av)"
        ) from exc
    return av


def _conversion(frame) -> tuple[dict, str]:
    """The reformat arguments that turn `frame` into RGB, and a note saying what they do."""
    name = frame.format.name
    if name in ("rgb24", "bgr24", "rgba", "bgra", "argb", "abgr", "rgb0", "bgr0", "0rgb", "0bgr"):
        return {}, f"{name} -> rgb24 (channels only)"
    if name.startswith("gbr"):
        return {}, f"{name} -> rgb24 (planar RGB, channels only)"
    if name.startswith(("gray", "ya")):
        return {}, f"{name} -> rgb24 (grey to three channels)"
    matrix = _SWS_MATRIX.get(int(frame.colorspace))
    range_code = int(frame.color_range)
    declared = []
    if matrix is None:
        matrix = "ITU601"
        declared.append("no colour matrix declared")
    if range_code not in (1, 2):
        range_code = 1
        declared.append("no range declared")
    range_name = "full (pc)" if range_code == 2 else "limited (tv)"
    note = f"{name} -> rgb24 by libswscale, {_MATRIX_NAME[matrix]} matrix, {range_name} range"
    if declared:
        note += f" ({', '.join(declared)}: swscale's default)"
    arguments = {"src_colorspace": matrix, "src_color_range": range_code}
    return arguments, note


@dataclass(frozen=True)
class _Reading:
    """What a sequence reader needs: the request each frame is prepared for, which frames
    are read, and the model's resize."""

    request: SourceRequest
    selection: FrameSelection
    interpolation: str
    crop_pct: float

    def source(self, image: Image.Image) -> torch.Tensor:
        return frame_source(image, self.request, self.interpolation, self.crop_pct)

    @property
    def limit(self) -> int:
        """At most this many frames: --max-frames, and what fits in MAX_SEQUENCE_BYTES."""
        cap = max(2, MAX_SEQUENCE_BYTES // (3 * self.request.side * self.request.side))
        max_frames = self.selection.max_frames
        return min(max_frames, cap) if max_frames is not None else cap


def read_video(path: str | os.PathLike, reading: _Reading) -> tuple[torch.Tensor, str]:
    """Decode the selected frames of a video into uint8 [V, 3, side, side]; returns the
    frames and a note (codec, pixel format, colour conversion, frames read)."""
    request, selection = reading.request, reading.selection
    av = _import_av()
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError as exc:
        raise VideoDecodeError("file not found") from exc
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoDecodeError(
            f"corrupt, truncated or not a video ({type(exc).__name__}: {exc})"
        ) from exc
    frames: list[torch.Tensor] = []
    number = -1
    last_end = 0.0  # s, where the last decoded frame ends
    conversion: tuple[dict, str] | None = None
    limit = reading.limit
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise VideoDecodeError(f"unsupported: no video stream (holds {', '.join(kinds)})")
        stream = container.streams.video[0]
        codec = stream.codec_context
        listed = int(stream.frames or 0)
        try:
            for frame in container.decode(stream):
                number += 1
                last_end = _frame_end(frame, stream)
                if not selection.keeps(number):
                    continue
                if conversion is None:
                    conversion = _conversion(frame)
                rgb = frame.to_ndarray(format="rgb24", **conversion[0])
                image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
                frames.append(reading.source(image))
                if len(frames) >= limit:
                    break
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(
                f"corrupt video: decoding stopped after {number + 1} frame(s) "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if len(frames) < limit:
            _check_complete(container, stream, number + 1, listed, last_end)
        if len(frames) >= limit and (selection.max_frames is None or limit < selection.max_frames):
            raise VideoDecodeError(
                f"too long: more than {limit} frames at {request.side} px would not fit in "
                "memory; use --max-frames or --frame-stride"
            )
        if not frames:
            raise VideoDecodeError(
                f"no frames to read: the video has {number + 1} frame(s) and --start is "
                f"{selection.start}"
            )
        note = (
            f"video {codec.name} {stream.width}x{stream.height}, {conversion[1]}; "
            f"{len(frames)} frame(s) read of {number + 1} decoded"
        )
        if request.kind == "frames" and (stream.width, stream.height) == (request.side,) * 2:
            note += "; frames already the model's input size, used as they are"
    finally:
        container.close()
    return torch.stack(frames), note


def _frame_end(frame, stream) -> float:
    """Seconds at which `frame` ends (0 when the file gives no timing)."""
    if frame.time is None:
        return 0.0
    rate = float(stream.average_rate or 0)
    return float(frame.time) + (1.0 / rate if rate > 0 else 0.0)


def _check_complete(container, stream, decoded: int, listed: int, last_end: float) -> None:
    """Raise for a video that ended before its container says it does: fewer frames than the
    container lists, or (where it lists none, e.g. Matroska) a last frame well before the
    declared duration (more than two frame intervals and 5% of it)."""
    if listed and decoded < listed:
        raise VideoDecodeError(
            f"truncated video: {decoded} of the {listed} frames its container lists could be "
            "decoded"
        )
    if container.duration and last_end > 0:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
        rate = float(stream.average_rate or 0)
        slack = max(2.0 / rate if rate > 0 else 0.0, 0.05 * duration)
        if duration - last_end > slack:
            raise VideoDecodeError(
                f"truncated video: its frames end at {last_end:.2f} s of the {duration:.2f} s "
                f"its container declares ({decoded} frame(s) decoded)"
            )


def read_frame_folder(path: str | os.PathLike, reading: _Reading) -> tuple[torch.Tensor, str]:
    """The selected frames of a folder of images (natural order) as uint8 [V, 3, side, side].
    One unreadable frame makes the whole sequence unusable (its pairs would skip a step)."""
    selection = reading.selection
    files = frame_files(Path(path))
    chosen = [f for n, f in enumerate(files) if selection.keeps(n)]
    chosen = chosen[: reading.limit]
    if not chosen:
        raise VideoDecodeError(
            f"no frames to read: the folder has {len(files)} image(s) and --start is "
            f"{selection.start}"
        )
    frames, converted = [], set()
    for file in chosen:
        try:
            image, note = decode_image(str(file), reading.request.side)
        except ImageDecodeError as exc:
            raise VideoDecodeError(f"frame '{file.name}': {exc}") from exc
        if note:
            converted.add(note)
        frames.append(reading.source(image))
    note = f"frame folder, {len(frames)} frame(s) read of {len(files)}"
    if converted:
        note += f"; frames {', '.join(sorted(converted))}"
    return torch.stack(frames), note


def frame_source(
    image: Image.Image, request: SourceRequest, interpolation: str, crop_pct: float
) -> torch.Tensor:
    """One frame as the model input of a 'frames' request: a frame that already is R x R is
    the model input as it is (ImageNet-P's evaluation feeds its 224 x 224 frames unresized);
    any other frame is prepared as a still image would be (for other requests: always)."""
    if request.kind == "frames" and image.size == (request.side, request.side):
        return to_chw(image)
    if request.kind == "frames":
        request = SourceRequest("standard", request.side)
    return prepare_source(image, request, interpolation, crop_pct)


def read_sequence(
    path: str | os.PathLike,
    request: SourceRequest,
    selection: FrameSelection,
    interpolation: str = "bicubic",
    crop_pct: float = 0.875,
) -> tuple[torch.Tensor, str]:
    """A video file or a folder of frames -> (frames uint8 [V, 3, side, side], note).
    A 'frames' request (the video protocol's) prepares each frame as the model's standard
    input, except that a frame already R x R is used as it is (see `frame_source`); any other
    request prepares each frame as that request would a still image."""
    reader = read_frame_folder if Path(path).is_dir() else read_video
    return reader(path, _Reading(request, selection, interpolation, crop_pct))


@dataclass(eq=False, repr=False)
class VideoDataset(SourceDataset):
    """Sequences -> DecodedImage whose one source (the protocol's 'frames' request) holds
    every `selection`ed frame. Used by the data workers exactly like SourceDataset."""

    selection: FrameSelection

    failure = "failed to read"
    fatal = (DataError,)

    def decode(self, item: ImageItem) -> tuple[dict[str, torch.Tensor], str]:
        sources, notes = {}, []
        for request in self.requests:
            frames, note = read_sequence(
                item.path, request, self.selection, self.interpolation, self.crop_pct
            )
            sources[request.key] = frames
            notes.append(note)
        return sources, "; ".join(notes)
