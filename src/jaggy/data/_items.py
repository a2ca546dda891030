"""Finding images: folders, file lists, the bundled sample photos; labels."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from ..models._classes import imagenet_class_index
from ._tables import TableRow, TextTable, read_text_table

if TYPE_CHECKING:
    from .annotations._objects import ObjectBox

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
    `label` is an ImageNet class index or -1 when unknown. `box`: the annotated object the
    item stands for (`--annotations`; its image_id is then `image#k`)."""

    index: int
    image_id: str
    path: str
    label: int = -1
    box: ObjectBox | None = None


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


@dataclass(frozen=True)
class ImageSet:
    """The images of a run, and what the label file said that matched no image (recorded in
    the manifest): `labels` is None without a label file."""

    items: list[ImageItem]
    labels: dict | None = None


def discover_images(
    data: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    samples: bool = False,
    labels: str | os.PathLike | None = None,
    limit: int | None = None,
) -> list[ImageItem]:
    """List the images of a run, in a stable order (see `find_images`)."""
    return find_images(data, samples=samples, labels=labels, limit=limit).items


def find_images(
    data: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    samples: bool = False,
    labels: str | os.PathLike | None = None,
    limit: int | None = None,
) -> ImageSet:
    """List the images of a run, in a stable order, with a report on the label file.

    Args:
        data: a folder (searched recursively, following symbolic links to folders) or a text
            file listing image paths (one per line, relative to the list's folder; an optional
            second column, tab or comma separated, gives the label as index, synset or class
            name; see `_tables` for quoting), or a list of image paths (each one's id is its
            absolute path; unlabelled unless `labels` names it).
        samples: use the bundled sample photos (unlabelled) instead of / in addition to `data`.
        labels: a CSV/TSV file mapping file name (or path relative to `data`) to class (index,
            synset id such as n02123045, or class name). A row naming no image is counted, with
            examples, in `ImageSet.labels`; conflicting rows, negative labels and a file naming
            no image at all are errors.
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
    report = None
    if labels is not None:
        entries, report = _apply_label_file(entries, Path(labels))
    if limit is not None:
        if limit < 1:
            raise DataError(f"--images must be at least 1 (got {limit})")
        entries = entries[:limit]
    items = [
        ImageItem(i, image_id, path, label) for i, (image_id, path, label) in enumerate(entries)
    ]
    return ImageSet(items, report)


def _walk_files(root: Path) -> list[Path]:
    """Every image file under `root`, following symbolic links to folders (each real folder
    once, so a link back up the tree does not loop)."""
    found = []
    seen: set[str] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in names:
            path = Path(folder) / name
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def _folder_entries(root: Path) -> list[tuple[str, str, int]]:
    files = _walk_files(root)
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
    if text.lstrip("+-").isdigit():
        value = int(text)
        if value < 0:
            raise DataError(
                f"{where}: label {value} is negative; classes are numbered from 0 (leave the "
                "row out to keep an image unlabelled)"
            )
        return value
    index = imagenet_class_index(text) if text else None
    if index is None:
        raise DataError(
            f"{where}: unknown class {text!r} (use an index, a synset id or a name; quote a "
            'file name that holds the separator: "my, photo.jpg",3)'
        )
    return index


def _is_label(text: str) -> bool:
    try:
        _parse_label(text, "")
    except DataError:
        return False
    return True


def _is_header(table: TextTable, row: TableRow, name: str, label: str) -> bool:
    """The first row is a header when it names no image file and holds no class."""
    return (
        row is table.rows[0]
        and not name.lower().endswith(IMAGE_EXTENSIONS)
        and not _is_label(label)
    )


def _list_entries(list_file: Path) -> list[tuple[str, str, int]]:
    """A file list: one image path per row, optionally a label in the last column. A row whose
    whole text names an existing file is that file (commas and all); otherwise an unquoted
    separator inside a name is kept in the name, and the last field is the label."""
    base = list_file.parent
    table = read_text_table(list_file, "file list")
    out = []
    first_line: dict[str, int] = {}
    for row in table.rows:
        whole = row.text
        if whole is not None and whole != row.fields[0] and _resolve(base, whole).is_file():
            name, label_text = whole, ""
        elif len(row.fields) == 1:
            name, label_text = row.fields[0], ""
        else:
            name = table.delimiter.join(row.fields[:-1]).strip()
            label_text = row.fields[-1]
        if label_text and _is_header(table, row, name, label_text):
            continue
        if not name:
            raise DataError(f"{table.where(row)}: the row names no image")
        label = _parse_label(label_text, table.where(row)) if label_text else -1
        if name in first_line:
            raise DataError(
                f"{table.where(row)}: {name!r} is listed again (first on line "
                f"{first_line[name]}); list each image once"
            )
        first_line[name] = row.line
        out.append((name, str(_resolve(base, name)), label))
    return out


def _resolve(base: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else base / path


def _read_label_rows(label_file: Path) -> tuple[dict[str, int], dict[str, int]]:
    """name -> label and name -> line of a label file; conflicting rows are an error."""
    if not label_file.exists():
        raise DataError(f"--labels file '{label_file}' does not exist")
    table = read_text_table(label_file, "--labels file")
    mapping: dict[str, int] = {}
    line_of: dict[str, int] = {}
    for row in table.rows:
        if len(row.fields) < 2 or not row.fields[1]:
            if row is table.rows[0] and not row.fields[0].lower().endswith(IMAGE_EXTENSIONS):
                continue  # a one-word header
            raise DataError(
                f"{table.where(row)}: expected 'file,class' (or a tab between them), got "
                f"{row.fields[0]!r}"
            )
        name = row.fields[0]
        if _is_header(table, row, name, row.fields[1]):
            continue
        if not name:
            raise DataError(f"{table.where(row)}: the row names no file")
        label = _parse_label(row.fields[1], table.where(row))
        if name in mapping and mapping[name] != label:
            raise DataError(
                f"{table.where(row)}: {name!r} is labelled {label} here but {mapping[name]} "
                f"on line {line_of[name]}; keep one label per image"
            )
        mapping.setdefault(name, label)
        line_of.setdefault(name, row.line)
    return mapping, line_of


UNMATCHED_EXAMPLES = 5


def _apply_label_file(entries, label_file: Path):
    """Label the entries (by relative path, else by file name); returns them and a report of
    the label rows that named no image."""
    mapping, line_of = _read_label_rows(label_file)
    by_name: dict[str, list[str]] = {}
    for image_id, _, _ in entries:
        by_name.setdefault(Path(image_id).name, []).append(image_id)
    used: set[str] = set()
    labelled = 0
    out = []
    for image_id, path, label in entries:
        key = image_id if image_id in mapping else Path(image_id).name
        if key in mapping:
            if key != image_id and len(by_name[key]) > 1:
                others = ", ".join(by_name[key][:3])
                raise DataError(
                    f"{label_file}:{line_of[key]}: {key!r} names {len(by_name[key])} images "
                    f"({others}); use the path relative to the data folder"
                )
            label = mapping[key]
            used.add(key)
            labelled += 1
        out.append((image_id, path, label))
    unmatched = [name for name in mapping if name not in used]
    if mapping and not used:
        first = unmatched[0]
        raise DataError(
            f"none of the {len(mapping)} rows of --labels '{label_file}' names an image of "
            f"the data (e.g. {first!r} on line {line_of[first]}); name each image by its file "
            "name or its path relative to the data folder"
        )
    report = {
        "file": str(label_file),
        "rows": len(mapping),
        "labelled_images": labelled,
        "unmatched_rows": len(unmatched),
        "unmatched_examples": [
            {"name": name, "line": line_of[name]} for name in unmatched[:UNMATCHED_EXAMPLES]
        ],
    }
    return out, report
