"""Helpers for the bias tests: known boxes on synthetic images, written in every annotation
format with that format's own convention."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# Real ImageNet synsets (tench, tabby, golden retriever), so every format can carry them.
CLASSES = ("n01440764", "n02123045", "n02099601")
SIZES = {"a.png": (64, 48), "b.png": (50, 80), "c.png": (100, 100), "d.png": (33, 70)}


@dataclass(frozen=True)
class Box:
    image: str
    cls: str
    x0: int  # continuous pixel corners, origin top-left (jaggy's convention)
    y0: int
    x1: int
    y1: int


def known_boxes(n: int = 40, seed: int = 0) -> list[Box]:
    """n integer boxes inside their images, spread over images and classes."""
    rng = np.random.default_rng(seed)
    names = list(SIZES)
    boxes = []
    for k in range(n):
        image = names[k % len(names)]
        width, height = SIZES[image]
        x0 = int(rng.integers(0, width - 2))
        y0 = int(rng.integers(0, height - 2))
        x1 = int(rng.integers(x0 + 1, width + 1))
        y1 = int(rng.integers(y0 + 1, height + 1))
        boxes.append(Box(image, CLASSES[int(rng.integers(0, len(CLASSES)))], x0, y0, x1, y1))
    return boxes


def write_images(folder: Path, sizes: dict[str, tuple[int, int]] = SIZES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (width, height) in sizes.items():
        Image.new("RGB", (width, height), (120, 90, 60)).save(folder / name)
    return folder


def write_coco(path: Path, boxes: list[Box], sizes=SIZES, extra_annotations=(), extra_images=()):
    image_ids = {name: 100 + i for i, name in enumerate(sizes)}
    data = {
        "images": [
            {"id": image_ids[name], "file_name": name, "width": w, "height": h}
            for name, (w, h) in sizes.items()
        ]
        + list(extra_images),
        "categories": [{"id": 10 + i, "name": name} for i, name in enumerate(CLASSES)],
        "annotations": [
            {
                "id": k,
                "image_id": image_ids[b.image],
                "category_id": 10 + CLASSES.index(b.cls),
                "bbox": [b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0],
                "area": 1.0,  # a mask's area: must not be used for the box size
                "iscrowd": 0,
            }
            for k, b in enumerate(boxes)
        ]
        + list(extra_annotations),
    }
    path.write_text(json.dumps(data))
    return path


def voc_xml(name: str, size: tuple[int, int] | None, objects: list[tuple]) -> str:
    """One VOC file; objects are (class, xmin, ymin, xmax, ymax) as text or numbers."""
    size_xml = (
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
        if size
        else ""
    )
    body = "".join(
        f"<object><name>{c}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{d}</xmax><ymax>{e}</ymax></bndbox></object>"
        for c, a, b, d, e in objects
    )
    return f"<annotation><filename>{name}</filename>{size_xml}{body}</annotation>"


def write_voc(folder: Path, boxes: list[Box], sizes=SIZES) -> Path:
    """VOC corners are 1-based and inclusive: xmin = x0 + 1, xmax = x1."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in sizes.items():
        objects = [(b.cls, b.x0 + 1, b.y0 + 1, b.x1, b.y1) for b in boxes if b.image == name]
        (folder / f"{Path(name).stem}.xml").write_text(voc_xml(name, size, objects))
    return folder


def write_imagenet_csv(path: Path, boxes: list[Box], sizes=SIZES) -> Path:
    """ImageIds without extension; corners as in the XML (1-based, inclusive)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageId", "PredictionString"])
        for name in sizes:
            tokens = [
                f"{b.cls} {b.x0 + 1} {b.y0 + 1} {b.x1} {b.y1}" for b in boxes if b.image == name
            ]
            if tokens:
                writer.writerow([Path(name).stem, " ".join(tokens)])
    return path


def write_yolo(folder: Path, boxes: list[Box], sizes=SIZES) -> Path:
    """Normalised centres and sizes; class names in classes.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for name, (w, h) in sizes.items():
        lines = [
            f"{CLASSES.index(b.cls)} {(b.x0 + b.x1) / 2 / w!r} {(b.y0 + b.y1) / 2 / h!r} "
            f"{(b.x1 - b.x0) / w!r} {(b.y1 - b.y0) / h!r}"
            for b in boxes
            if b.image == name
        ]
        (folder / f"{Path(name).stem}.txt").write_text("\n".join(lines) + "\n")
    return folder


def write_all_formats(root: Path, boxes: list[Box]) -> dict[str, tuple[Path, Path | None]]:
    """The same boxes as COCO, VOC, ImageNet CSV and YOLO: format -> (path, images folder)."""
    images = write_images(root / "images")
    return {
        "coco": (write_coco(root / "instances.json", boxes), None),
        "voc": (write_voc(root / "voc", boxes), None),
        "imagenet-csv": (write_imagenet_csv(root / "LOC_val_solution.csv", boxes), images),
        "yolo": (write_yolo(root / "yolo", boxes), images),
    }
