"""Finding images: folders, file lists, the bundled sample photos; labels."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..models import imagenet_class_index

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".jfif",
)
SAMPLE_NAMES = ("chelsea", "coffee", "rocket", "astronaut", "grace_hopper")


@dataclass(frozen=True)
class ImageItem:
    """One input image. `image_id` is stable across runs (path relative to the data root);
    `label` is an ImageNet class index or -1 when unknown."""

    index: int
    image_id: str
    path: str
    label: int = -1


def sample_paths() -> dict[str, str]:
    """The real sample photos shipped by scikit-image and matplotlib, by name."""
    paths: dict[str, str] = {}
    try:
        import skimage.data

        root = Path(skimage.data.__file__).parent
        for name, file in (
            ("chelsea", "chelsea.png"),
            ("coffee", "coffee.png"),
            ("rocket", "rocket.jpg"),
            ("astronaut", "astronaut.png"),
        ):
            if (root / file).is_file():
                paths[name] = str(root / file)
    except ImportError:
        pass
    try:
        import matplotlib.cbook

        paths["grace_hopper"] = str(
            matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        )
    except (ImportError, OSError, ValueError):
        pass
    if not paths:
        raise DataError("no sample photos found; install scikit-image and matplotlib")
    return paths


def discover_images(
    data: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    samples: bool = False,
    labels: str | os.PathLike | None = None,
    limit: int | None = None,
) -> list[ImageItem]:
    """List the images of a run, in a stable order.

    Args:
        data: a folder (searched recursively) or a text file listing image paths (one per line,
            relative to the list's folder; an optional second column, tab or comma separated,
            gives the label as index, synset or class name), or a list of image paths (each
            one's id is its absolute path; unlabelled unless `labels` names it).
        samples: use the bundled sample photos (unlabelled) instead of / in addition to `data`.
        labels: a CSV/TSV file mapping file name (or relative path) to class (index, synset id
            such as n02123045, or class name).
        limit: keep the first `limit` images.

    Folder labels: when every immediate sub-folder is named by an ImageNet synset id or class
    name (ImageFolder layout), images inside take that class. Otherwise labels are -1.
    """
    entries: list[tuple[str, str, int]] = []  # (image_id, path, label)
    if isinstance(data, (list, tuple)):
        entries.extend(_path_entries(data))
    elif data is not None:
        root = Path(data)
        if not root.exists():
            raise DataError(f"'{data}' does not exist; give a folder of images or a file list")
        if root.is_dir():
            entries.extend(_folder_entries(root))
        else:
            entries.extend(_list_entries(root))
    if samples:
        entries.extend((f"sample/{name}", path, -1) for name, path in sample_paths().items())
    if data is None and not samples:
        raise DataError("no images given: pass a folder or file list, or --samples")
    if not entries:
        raise DataError(f"no images found in '{data}' (looked for {', '.join(IMAGE_EXTENSIONS)})")
    if labels is not None:
        entries = _apply_label_file(entries, Path(labels))
    if limit is not None:
        if limit < 1:
            raise DataError(f"--images must be at least 1 (got {limit})")
        entries = entries[:limit]
    return [
        ImageItem(i, image_id, path, label) for i, (image_id, path, label) in enumerate(entries)
    ]


def _folder_entries(root: Path) -> list[tuple[str, str, int]]:
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    subdirs = sorted(
        {p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1}
    )
    class_of: dict[str, int] = {}
    if subdirs and all(len(p.relative_to(root).parts) > 1 for p in files):
        resolved = {d: imagenet_class_index(d) for d in subdirs}
        if all(v is not None for v in resolved.values()):
            class_of = {d: int(v) for d, v in resolved.items() if v is not None}
    out = []
    for p in files:
        rel = p.relative_to(root)
        label = class_of.get(rel.parts[0], -1) if len(rel.parts) > 1 else -1
        out.append((rel.as_posix(), str(p), label))
    return out


def _path_entries(paths) -> list[tuple[str, str, int]]:
    if not paths:
        raise DataError("an empty list of images; give at least one image path")
    out = []
    for path in paths:
        if not isinstance(path, (str, os.PathLike)):
            raise DataError(f"a list of images holds file paths, got {type(path).__name__}")
        full = Path(os.path.abspath(path))
        out.append((full.as_posix(), str(full), -1))
    return out


def _parse_label(text: str, where: str) -> int:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    index = imagenet_class_index(text)
    if index is None:
        raise DataError(f"{where}: unknown class '{text}' (use an index, a synset id or a name)")
    return index


def _list_entries(list_file: Path) -> list[tuple[str, str, int]]:
    base = list_file.parent
    out = []
    try:
        lines = list_file.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"'{list_file}' is not a text file list of images (or a folder)") from exc
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in (line.split("\t") if "\t" in line else line.split(","))]
        path = Path(parts[0])
        full = path if path.is_absolute() else base / path
        label = (
            _parse_label(parts[1], f"{list_file}:{number}") if len(parts) > 1 and parts[1] else -1
        )
        out.append((parts[0], str(full), label))
    return out


def _apply_label_file(entries, label_file: Path):
    if not label_file.is_file():
        raise DataError(f"--labels file '{label_file}' does not exist")
    mapping: dict[str, int] = {}
    with label_file.open(newline="") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        dialect = csv.excel_tab if "\t" in sample else csv.excel
        for number, row in enumerate(csv.reader(handle, dialect), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise DataError(f"{label_file}:{number}: expected 'file,class'")
            if number == 1 and not row[0].strip().lower().endswith(IMAGE_EXTENSIONS):
                continue  # header row
            mapping[row[0].strip()] = _parse_label(row[1], f"{label_file}:{number}")
    out = []
    for image_id, path, label in entries:
        label = mapping.get(image_id, mapping.get(Path(image_id).name, label))
        out.append((image_id, path, label))
    return out
