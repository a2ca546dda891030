"""thumbnails/: small pictures of the views the model saw, written by the audit for the report.

While the audit holds an image's views (the normalised tensors given to the model), it shrinks
the ones the report shows by default (`SHOWN_VIEWS` evenly spaced views of each protocol key,
`shown_positions`) to `THUMB_SIDE` px, exactly as the report would re-make them from the image
file (un-normalised, clamped to 0..1, rounded to uint8, shrunk by `shrink`), so the report reads them
instead of decoding every source and re-running every protocol.

Only the run's first `THUMBNAIL_IMAGES` images (by image index) get thumbnails: see there.

The audit takes the shown views' pixels on its own thread (a small copy of tensors the model
is about to get); shrinking them (PIL, which releases the GIL) and writing the file happen on
one low-priority background thread, off the forward's critical path. The engine waits for an
image's file before it commits the chunk that holds the image (`ThumbnailWriter.wait`), so a
killed run still leaves no thumbnail of a chunk that is not committed in a half-written state
that a resume would not redo.

One file per image, `thumbnails/image-{index:06d}.npz` (NumPy's npz: a zip of .npy arrays,
written atomically, with fixed zip dates so that the same views give the same bytes):
`pixels` uint8 [n, side, side, 3], `keys` str [n] (protocol key), `views` int64 [n] (view
index k), `meta` a JSON string {"run_id", "image_id", "side"}. The run_id ties a file to the
run of its folder's run.json: a run started afresh in the same folder does not show another
run's pictures. Worst-case sets (`worst@KIND`, cut at the first failure) get none. Since each
image has its own file, resumed and sharded (torchrun) runs write the same files as one
process, each image by the rank that computes it.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import JaggyError
from ._atomic import atomic_write

THUMB_SIDE = 64  # px
SHOWN_VIEWS = 6  # views per image and protocol key: the report's default (ReportLimits)
# The report shows the views of the few most unstable images; in a big run those lie anywhere,
# so stored thumbnails pay off in small runs (the demo, samples, a folder of a few dozen)
# while a big run's folder must not grow by much: at most 32 x 6 thumbnails per protocol key,
# about 7 KB each once compressed (1.3 MB per key; the demo's 5 photos x 12 keys: 2.4 MB).
THUMBNAIL_IMAGES = 32
THUMBNAILS_FOLDER = "thumbnails"
WRITES_AHEAD = 4  # images whose thumbnails may wait for the background thread (~2 MB each)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the zip format's first date: no clock in the bytes


def shown_positions(n: int, limit: int = SHOWN_VIEWS) -> list[int]:
    """The positions (0..n-1) of the views shown of a sequence of n: all, or `limit` evenly
    spaced from the first to the last."""
    if limit <= 0:
        return []
    if n <= limit:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, limit)})


def thumbnail_path(run_dir: str | Path, index: int) -> Path:
    return Path(run_dir) / THUMBNAILS_FOLDER / _file_name(index)


def _file_name(index: int) -> str:
    return f"image-{index:06d}.npz"


def _is_file_name(name: str) -> bool:
    """Whether `name` is one that `_file_name` gives (read back through it: one definition)."""
    digits = name.removeprefix("image-").removesuffix(".npz")
    return digits.isdigit() and _file_name(int(digits)) == name


def view_planes(preprocessing, views: torch.Tensor, which: list[int]) -> np.ndarray:
    """Views `which` of normalised views [N, 3, R, R] as what the model saw, uint8 [n, 3, R,
    R]: x * std + mean, clamped to 0..1, times 255, rounded: `to_pixels` and the report's
    steps, in place on one copy (the same operations in the same order, so the same bits)."""
    index = torch.tensor(which, device=views.device)
    pixels = views.float().index_select(0, index)  # a copy: the views go on to the model
    mean, std = preprocessing.stats_like(pixels)
    pixels.mul_(std).add_(mean).clamp_(0, 1).mul_(255).round_()
    # Whole numbers 0..255 convert exactly either way; NumPy's cast is several times faster.
    return pixels.cpu().numpy().astype(np.uint8)


# PIL's Lanczos after a box average by the whole factor that leaves at least 1.5x the side
# (224 px: 2x2 boxes, then Lanczos from 112): within about one level of 255 of a Lanczos shrink
# of the whole view, in less than half its time (the thumbnails compete with the forward).
REDUCING_GAP = 1.5


def _shrunk(image: Image.Image, side: int) -> np.ndarray:
    resized = image.resize((side, side), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    return np.asarray(resized)


def shrink(pixels: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """One view's uint8 [R, R, 3] pixels as a [side, side, 3] thumbnail (see REDUCING_GAP)."""
    return _shrunk(Image.fromarray(pixels, "RGB"), side)


def shrink_planes(planes: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """`shrink` of one view given as planes [3, R, R] (the same RGB image, assembled by PIL
    instead of a channel-last copy)."""
    return _shrunk(Image.merge("RGB", [Image.fromarray(plane, "L") for plane in planes]), side)


@dataclass
class ImageThumbnails:
    """The thumbnails of one image, collected while the audit makes its views."""

    path: Path
    run_id: str | None
    image_id: str
    preprocessing: object
    planes: list[np.ndarray] = field(default_factory=list)  # uint8 [n, 3, R, R] blocks
    keys: list[str] = field(default_factory=list)
    views: list[int] = field(default_factory=list)

    def add(self, key: str, n_views: int, first: int, views: torch.Tensor) -> None:
        """Keep the shown ones of views first..first+len(views)-1 of a sequence of n_views
        (their pixels now; they are shrunk by `write`)."""
        if key.startswith("worst@"):  # worst-case sets have a section of their own, no views
            return
        wanted = [k for k in shown_positions(n_views) if first <= k < first + len(views)]
        if not wanted:
            return
        self.planes.append(view_planes(self.preprocessing, views, [k - first for k in wanted]))
        self.keys += [key] * len(wanted)
        self.views += wanted

    def write(self) -> None:
        """Write the image's file (atomically). A file there that is not a jaggy thumbnail
        file is left alone, and a write that fails is given up (these pictures only spare the
        report work): the report then re-makes these views."""
        if not self.planes:
            return
        try:
            self.path.parent.mkdir(exist_ok=True)
            if os.path.lexists(self.path) and _read_file(self.path) is None:
                return  # not jaggy's file
            _remove_leftovers(self.path)
        except OSError:  # a file named like the folder, or a folder jaggy cannot write
            return
        meta = {"run_id": self.run_id, "image_id": self.image_id, "side": THUMB_SIDE}
        arrays = {
            "pixels": np.stack([shrink_planes(p) for block in self.planes for p in block]),
            "keys": np.array(self.keys, dtype=str),
            "views": np.array(self.views, dtype=np.int64),
            "meta": np.array(json.dumps(meta)),
        }
        try:
            atomic_write(self.path, lambda tmp: _write_npz(tmp, arrays))
        except JaggyError:  # a full or read-only disk: the rows say so when they are written;
            pass  # the report re-makes what is missing


class ThumbnailWriter:
    """Hands out an `ImageThumbnails` for each of a run's first `THUMBNAIL_IMAGES` images and
    writes their files on one background thread (`write`; `wait` for them). `initializer`
    runs first on that thread (the engine's lowers its priority)."""

    def __init__(self, out: str | Path, run_id: str | None, preprocessing, initializer=None):
        self.out = Path(out)
        self.run_id = run_id
        self.preprocessing = preprocessing
        self.initializer = initializer
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def image(self, index: int, image_id: str) -> ImageThumbnails | None:
        if index >= THUMBNAIL_IMAGES:
            return None
        path = thumbnail_path(self.out, index)
        return ImageThumbnails(path, self.run_id, image_id, self.preprocessing)

    def write(self, thumbnails: ImageThumbnails) -> None:
        """Shrink and write one image's thumbnails in the background."""
        if not thumbnails.planes:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                1, thread_name_prefix="jaggy-thumbnails", initializer=self.initializer
            )
        while len(self._pending) >= WRITES_AHEAD:  # bounded: their pixels wait in memory
            self._pending.pop(0).result()
        self._pending.append(self._pool.submit(thumbnails.write))

    def wait(self) -> None:
        """Return once every file handed to `write` is written (or given up)."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Wait for the files in progress and stop the background thread."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


def own_thumbnail_files(run_dir: str | Path) -> list[Path]:
    """The thumbnail files in `run_dir`'s thumbnails/ that jaggy wrote (named as it names
    them and readable as its format), whichever run wrote them: what starting afresh there
    deletes. Any other file in that folder is left alone."""
    folder = Path(run_dir) / THUMBNAILS_FOLDER
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [
        folder / name
        for name in names
        if _is_file_name(name)
        and (folder / name).is_file()
        and not (folder / name).is_symlink()
        and _read_file(folder / name) is not None
    ]


def _remove_leftovers(path: Path) -> None:
    """Delete the half-written temporaries of `path` that a killed run left (the atomic
    writer's '.NAME.XXXXXXXX.tmp'). Only this process writes this image (ranks compute other
    images), and a killed write always comes before its chunk's commit, so the resumed run
    that recomputes the image is the one that tidies it."""
    leftover = re.compile(re.escape(f".{path.name}.") + r"[0-9a-f]{8}\.tmp")
    for name in os.listdir(path.parent):
        if leftover.fullmatch(name):
            try:
                os.remove(path.parent / name)
            except OSError:
                pass


def _write_npz(tmp: str, arrays: dict[str, np.ndarray]) -> None:
    # Level 1: these pictures barely compress further, and the audit is waiting.
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=1)


def _read_file(path: Path) -> tuple[dict, dict[tuple[str, int], np.ndarray]] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"].item()))
            pixels, keys, views = data["pixels"], data["keys"], data["views"]
        if not isinstance(meta, dict) or pixels.dtype != np.uint8 or pixels.ndim != 4:
            return None
        if not len(pixels) == len(keys) == len(views):
            return None
    except Exception:  # not a thumbnail file of jaggy's (damaged, or someone else's)
        return None
    return meta, {(str(k), int(v)): p for k, v, p in zip(keys, views, pixels, strict=True)}


def read_thumbnails(
    run_dir: str | Path, index: int, image_id: str, run_id: str | None, side: int = THUMB_SIDE
) -> dict[tuple[str, int], np.ndarray]:
    """The stored thumbnails of one image, {(protocol key, view k): uint8 [side, side, 3]};
    empty when the run wrote none for it (an image beyond the first, an older version) or
    the file belongs to another run or image."""
    path = thumbnail_path(run_dir, index)
    read = _read_file(path) if path.is_file() else None
    if read is None:
        return {}
    meta, thumbnails = read
    if (meta.get("run_id"), meta.get("image_id"), meta.get("side")) != (run_id, image_id, side):
        return {}
    return thumbnails
