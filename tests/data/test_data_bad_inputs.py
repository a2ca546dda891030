"""Odd and broken images are converted or skipped with a reason; folders and labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import write_synthetic_images
from jaggy.cli import main
from jaggy.data import discover_images
from jaggy.data._decode import ImageDecodeError, decode_image, prepare_source
from jaggy.errors import DataError
from jaggy.protocols import SourceRequest


def make_odd_images(folder):
    """One file per odd case; returns {file name: expected outcome}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "ok.png")
    Image.fromarray(rgb[..., 0]).save(folder / "gray.png")
    Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray((rng.random((40, 40)) * 65535).astype(np.uint16)).save(folder / "deep16.png")
    Image.fromarray(rgb).convert("P").save(folder / "palette.png")
    Image.fromarray(rgb[:3, :3]).save(folder / "tiny.png")
    (folder / "corrupt.jpg").write_bytes(b"this is not an image at all")
    Image.fromarray((rng.random((200, 200, 3)) * 255).astype(np.uint8)).save(
        folder / "full.jpg", quality=90
    )
    data = (folder / "full.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    return {
        "ok.png": None,
        "gray.png": "converted from L",
        "rgba.png": "converted from RGBA",
        "cmyk.jpg": "converted from CMYK",
        "deep16.png": "converted from I;16",
        "palette.png": "converted from P",
        "full.jpg": None,
        "tiny.png": "too small",
        "corrupt.jpg": "unreadable",
        "truncated.jpg": "unreadable",
    }


def test_decode_converts_or_refuses_each_odd_image(tmp_path):
    expected = make_odd_images(tmp_path / "odd")
    for name, outcome in expected.items():
        path = str(tmp_path / "odd" / name)
        if outcome in ("too small", "unreadable"):
            with pytest.raises(ImageDecodeError, match=outcome):
                decode_image(path)
            continue
        image, note = decode_image(path)
        assert image.mode == "RGB"
        if outcome is None:
            assert note is None
        else:
            assert note.startswith(outcome.split(" I;16")[0])


def test_sixteen_bit_values_are_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    image, _ = decode_image(str(tmp_path / "ramp.png"))
    values = np.asarray(image)[..., 0]
    assert values.min() == 0 and values.max() == 255 and len(np.unique(values)) > 200


def test_audit_skips_bad_images_and_records_reasons(tmp_path):
    expected = make_odd_images(tmp_path / "odd")
    out = tmp_path / "out"
    code = main(
        [
            "audit",
            "py:tinynets:tiny",
            str(tmp_path / "odd"),
            "--protocol",
            "crop",
            "--steps",
            "3",
            "--out",
            str(out),
            "--no-progress",
            "--batch-size",
            "4",
            "--workers",
            "0",
        ]
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    skipped = {s["image_id"]: s["reason"] for s in manifest["images"]["skipped"]}
    assert set(skipped) == {"tiny.png", "corrupt.jpg", "truncated.jpg"}
    assert "too small" in skipped["tiny.png"]
    converted = {c["image_id"] for c in manifest["images"]["converted"]}
    assert converted == {"gray.png", "rgba.png", "cmyk.jpg", "deep16.png", "palette.png"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocols"]["crop"]["n_images"] == len(expected) - 3
    assert summary["n_skipped"] == 3


def test_empty_folder_is_a_clear_error_before_any_work(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    code = main(["audit", "py:tinynets:tiny", str(tmp_path / "empty"), "--out", str(out)])
    assert code == 2
    assert "no images found" in capsys.readouterr().err
    assert not out.exists()


def test_imagefolder_labels_from_synsets_and_names(tmp_path):
    write_synthetic_images(tmp_path / "n02123045", 2)
    write_synthetic_images(tmp_path / "espresso", 1)
    items = discover_images(tmp_path)
    assert [(i.image_id, i.label) for i in items] == [
        ("espresso/img000.png", 967),
        ("n02123045/img000.png", 281),
        ("n02123045/img001.png", 281),
    ]


def test_unrecognised_subfolders_leave_images_unlabelled(tmp_path):
    write_synthetic_images(tmp_path / "holiday", 2)
    assert [i.label for i in discover_images(tmp_path)] == [-1, -1]


def test_label_file_and_file_list(tmp_path):
    paths = write_synthetic_images(tmp_path / "imgs", 3)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,class\nimg000.png,281\nimg001.png,n03063599\nimg002.png,espresso\n")
    items = discover_images(tmp_path / "imgs", labels=labels)
    assert [i.label for i in items] == [281, 504, 967]
    listing = tmp_path / "list.txt"
    listing.write_text(f"imgs/{paths[2].name}\t12\n# comment\nimgs/{paths[0].name}\n")
    items = discover_images(listing)
    assert [(i.image_id, i.label) for i in items] == [
        ("imgs/img002.png", 12),
        ("imgs/img000.png", -1),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("img000.png,not_a_class_name_xyz\n")
    with pytest.raises(DataError, match="unknown class"):
        discover_images(tmp_path / "imgs", labels=bad)


def test_samples_are_the_five_real_photos():
    items = discover_images(samples=True)
    assert [i.image_id for i in items] == [
        "sample/chelsea",
        "sample/coffee",
        "sample/rocket",
        "sample/astronaut",
        "sample/grace_hopper",
    ]
    assert all(i.label == -1 for i in items)


def test_standard_source_is_resize_then_centre_crop(tmp_path):
    image = Image.fromarray((np.random.default_rng(1).random((60, 90, 3)) * 255).astype(np.uint8))
    out = prepare_source(image, SourceRequest("standard", 32), "bilinear", 0.8)
    resized = image.resize((60, 40), Image.Resampling.BILINEAR)  # shorter side 32/0.8 = 40
    expected = np.asarray(resized.crop((14, 4, 46, 36)))
    assert np.array_equal(out.permute(1, 2, 0).numpy(), expected)
