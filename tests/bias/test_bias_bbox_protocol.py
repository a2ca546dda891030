"""The bbox protocol: the object's square by hand, its pixels, and `jaggy audit
--annotations` end to end (one sequence per object; too-small objects skipped with a reason)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from bias_files import CLASSES, Box, write_coco
from PIL import Image

from jaggy.cli import main
from jaggy.data._box_source import object_square
from jaggy.data._decode import ImageDecodeError, prepare_source
from jaggy.data.annotations._objects import ObjectBox
from jaggy.protocols import SourceRequest

BASE = ["--steps", "3", "--no-progress", "--batch-size", "8", "--workers", "0"]


def test_square_is_centred_then_moved_inside_and_capped():
    # 40 x 20 box centred at (60, 50) in 200 x 100: side 40 * 1.2 = 48, left 36, top 26
    assert object_square(ObjectBox(40, 40, 80, 60, 200, 100, "x"), 0.1) == pytest.approx(
        (36, 26, 48)
    )
    # near the left edge: moved right to 0, not shrunk
    assert object_square(ObjectBox(0, 40, 40, 60, 200, 100, "x"), 0.1) == pytest.approx((0, 26, 48))
    # larger than the shorter side: capped at 100, moved inside
    assert object_square(ObjectBox(10, 0, 190, 100, 200, 100, "x"), 0.5) == pytest.approx(
        (50, 0, 100)
    )


def test_box_source_pixels_are_the_object_square_resized():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (100, 200, 3), dtype=np.uint8))
    box = ObjectBox(40, 40, 80, 60, 200, 100, "x")
    source = prepare_source(image, SourceRequest("box", 24, margin=0.1), "bilinear", 0.875, box)
    expected = image.crop((36, 26, 84, 74)).resize((24, 24), Image.Resampling.BILINEAR)
    assert source.shape == (3, 24, 24)
    # The border pixels differ: the source's filter also sees the pixels around the square
    # (no edge replication), so only the inside must equal the crop resized.
    got = source.permute(1, 2, 0).numpy()
    assert np.array_equal(got[2:-2, 2:-2], np.asarray(expected)[2:-2, 2:-2])
    with pytest.raises(ImageDecodeError, match="too small to crop"):
        prepare_source(
            image, SourceRequest("box", 24), "bilinear", 0.875, ObjectBox(1, 1, 9, 9, 200, 100, "x")
        )


def _photos(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name, (w, h) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return folder


def test_audit_with_annotations_makes_one_sequence_per_object(tmp_path):
    sizes = {"a.png": (120, 90), "b.png": (100, 100)}
    images = _photos(tmp_path / "images", sizes)
    boxes = [
        Box("a.png", CLASSES[1], 10, 10, 70, 60),
        Box("a.png", CLASSES[0], 2, 2, 12, 12),  # 12 px square: too small to crop
        Box("a.png", CLASSES[2], 50, 30, 118, 88),
        Box("b.png", CLASSES[0], 20, 20, 80, 90),
    ]
    path = write_coco(tmp_path / "instances.json", boxes, sizes=sizes)
    out = tmp_path / "run"
    code = main(
        [
            "audit",
            "py:tinynets:tiny1000",
            str(images),
            "--annotations",
            str(path),
            *BASE,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    predictions = pq.read_table(out / "predictions.parquet").to_pylist()
    ids = sorted({row["image_id"] for row in predictions})
    assert ids == ["a.png#0", "a.png#2", "b.png#0"]
    assert {row["protocol"] for row in predictions} == {"bbox"}
    assert len(predictions) == 3 * 3  # three objects, three views each
    # ImageNet synsets become labels
    label_of = {row["image_id"]: row["label"] for row in predictions}
    from jaggy.models._classes import imagenet_class_index

    assert label_of["b.png#0"] == imagenet_class_index(CLASSES[0])
    manifest = json.loads((out / "manifest.json").read_text())
    skipped = manifest["images"]["skipped"]
    assert [s["image_id"] for s in skipped] == ["a.png#1"]
    assert "too small to crop" in skipped[0]["reason"]
    assert manifest["protocols"][0]["bbox_margin"] == 0.1
    # the report re-creates the objects' views from the annotations
    import torch

    from jaggy.report._run import RunFolder
    from jaggy.report._views import ViewMaker
    from tinynets import tiny1000

    views = ViewMaker(RunFolder(out, 0)).views("a.png#2", "bbox", [0, 1, 2])
    assert not isinstance(views, str), views
    with torch.no_grad():
        probs = tiny1000().eval()(views).softmax(1)
    rows = sorted((r for r in predictions if r["image_id"] == "a.png#2"), key=lambda r: r["view"])
    assert probs.argmax(1).tolist() == [r["top1"] for r in rows]
    assert probs.max(1).values.tolist() == pytest.approx(
        [r["top5_probs"][0] for r in rows], abs=1e-5
    )


def test_bbox_and_annotations_are_refused_apart(tmp_path, capsys):
    sizes = {"a.png": (120, 90)}
    images = _photos(tmp_path / "images", sizes)
    path = write_coco(tmp_path / "i.json", [Box("a.png", CLASSES[0], 10, 10, 70, 60)], sizes)
    out = str(tmp_path / "o")
    assert (
        main(["audit", "py:tinynets:tiny", str(images), "--protocol", "bbox", *BASE, "--out", out])
        == 2
    )
    assert "--annotations FILE" in capsys.readouterr().err
    assert (
        main(
            [
                "audit",
                "py:tinynets:tiny",
                str(images),
                "--annotations",
                str(path),
                "--protocol",
                "bbox",
                "--protocol",
                "crop",
                *BASE,
                "--out",
                out,
            ]
        )
        == 2
    )
    assert "separate audit" in capsys.readouterr().err
    assert (
        main(
            [
                "audit",
                "py:tinynets:tiny",
                "--samples",
                "--annotations",
                str(path),
                *BASE,
                "--out",
                out,
            ]
        )
        == 2
    )
    assert "needs DATA" in capsys.readouterr().err


def test_bbox_audit_joined_back_with_its_annotations(tmp_path):
    """audit --annotations, then bias --audit: every row is its own object (image#k)."""
    sizes = {"a.png": (120, 90), "b.png": (100, 100)}
    images = _photos(tmp_path / "images", sizes)
    boxes = [
        Box("a.png", CLASSES[1], 10, 10, 70, 60),
        Box("a.png", CLASSES[2], 50, 30, 118, 88),
        Box("b.png", CLASSES[0], 20, 20, 80, 90),
    ]
    path = write_coco(tmp_path / "instances.json", boxes, sizes=sizes)
    run = tmp_path / "run"
    args = ["audit", "py:tinynets:tiny1000", str(images), "--annotations", str(path), *BASE]
    assert main([*args, "--out", str(run)]) == 0
    out = tmp_path / "bias"
    assert main(["bias", str(path), "--audit", str(run), "--out", str(out), "--no-figures"]) == 0
    invariance = json.loads((out / "bias.json").read_text())["invariance"]
    assert invariance["object"] == "the audited object (a bbox run)"
    assert invariance["rows"]["bbox"] == {"rows": 3, "matched": 3}
    joined = pq.read_table(out / "invariance.parquet").to_pylist()
    size_of = {r["image_id"]: r["size"] for r in joined}
    assert size_of["a.png#1"] == pytest.approx(np.sqrt(68 * 58 / (120 * 90)))
    assert size_of["b.png#0"] == pytest.approx(np.sqrt(60 * 70 / (100 * 100)))
