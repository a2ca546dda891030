"""YOLO label folders: one `.txt` per image, one line per box, `class cx cy w h` with the
centre and size normalised by the image's width and height (0..1).

Class names come from `classes.txt` (one per line) or the `names` of a `data.yaml` /
`dataset.yaml`, looked for in the folder and its parents up to two levels; without them
classes are named by their ids. Images (for their sizes in pixels) are looked for in the
folder given, else in the standard layout's `images` folder beside `labels`
(`ds/labels/val/a.txt` <-> `ds/images/val/a.jpg`).
"""

from __future__ import annotations

from pathlib import Path

from ._images import ImageFolderIndex
from ._table import (
    MISSING_IMAGE_SIZE,
    UNKNOWN_CLASS,
    UNKNOWN_IMAGE,
    AnnotationError,
    Annotations,
    BoxCollector,
)

_NAME_FILES = ("classes.txt", "obj.names")


def read_yolo(path: str | Path, images: str | Path | None = None) -> Annotations:
    path = Path(path)
    if not path.is_dir():
        raise AnnotationError(f"{path}: YOLO labels are a folder of .txt files")
    files = sorted(p for p in path.rglob("*.txt") if p.name not in _NAME_FILES)
    if not files:
        raise AnnotationError(f"{path}: no .txt label files found")
    folder = Path(images) if images is not None else _images_beside(path)
    if folder is None or not folder.is_dir():
        raise AnnotationError(
            f"{path}: YOLO boxes are normalised, so jaggy needs the images for their sizes; "
            "pass their folder (--images DIR)"
        )
    index = ImageFolderIndex(folder)
    names = class_names_near(path)
    collector = BoxCollector()
    if names is not None:
        for name in names:
            collector.class_id(name)
    for file in files:
        _read_file(file, path, index, names, collector)
    return collector.finish(str(path), "yolo")


def _images_beside(labels: Path) -> Path | None:
    parts = labels.resolve().parts
    if "labels" not in parts:
        return None
    k = len(parts) - 1 - parts[::-1].index("labels")
    return Path(*parts[:k], "images", *parts[k + 1 :])


def class_names_near(labels: Path) -> list[str] | None:
    for folder in (labels, labels.parent, labels.parent.parent):
        for name in _NAME_FILES:
            file = folder / name
            if file.is_file():
                return [n.strip() for n in file.read_text().splitlines() if n.strip()]
        for name in ("data.yaml", "dataset.yaml"):
            file = folder / name
            if file.is_file():
                names = _yaml_names(file)
                if names is not None:
                    return names
    return None


def _yaml_names(file: Path) -> list[str] | None:
    try:
        import yaml
    except ImportError:
        return None
    try:
        names = (yaml.safe_load(file.read_text()) or {}).get("names")
    except (yaml.YAMLError, AttributeError) as exc:
        raise AnnotationError(f"{file}: not valid YAML ({exc})") from None
    if isinstance(names, dict):  # {0: person, 1: bicycle}
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, list):
        return [str(n) for n in names]
    return None


def _read_file(file: Path, root: Path, index, names, collector: BoxCollector) -> None:
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{file}: not a UTF-8 text file ({exc.reason})") from None
    rows = []
    for line, text in enumerate(lines, 1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) != 5:
            raise AnnotationError(
                f"{file}:{line}: expected 'class cx cy w h' (5 fields), got {len(fields)}"
            )
        try:
            cls = int(fields[0])
        except ValueError:
            raise AnnotationError(
                f"{file}:{line}: class {fields[0]!r} is not an integer id"
            ) from None
        try:
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            raise AnnotationError(
                f"{file}:{line}: cx cy w h must be numbers, got {' '.join(fields[1:])!r}"
            ) from None
        rows.append((line, cls, cx, cy, w, h))
    relative = file.relative_to(root).with_suffix("").as_posix()
    image_file = index.find(relative)
    if image_file is None:
        for line, *_ in rows:
            collector.skip(
                UNKNOWN_IMAGE, f"{file.name}:{line} (no image {relative}.* in {index.folder})"
            )
        return
    size = index.size(image_file)
    width, height = size if size else (None, None)
    image = collector.image(index.relative_id(image_file), width, height)
    for line, cls, cx, cy, w, h in rows:
        where = f"{file.name}:{line}"
        if size is None:
            collector.skip(MISSING_IMAGE_SIZE, where)
            continue
        if cls < 0 or (names is not None and cls >= len(names)):
            collector.skip(UNKNOWN_CLASS, where)
            continue
        class_index = cls if names is not None else collector.class_id(str(cls))
        collector.add(
            image,
            class_index,
            (cx - w / 2) * width,
            (cy - h / 2) * height,
            (cx + w / 2) * width,
            (cy + h / 2) * height,
            where,
        )
