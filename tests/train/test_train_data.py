"""`jaggy train MODEL DATA`: a new head from the class folders, augmentation, remedies, the
held-out audit with typicality, and `--distill` on unlabelled images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from jaggy.cli import main
from jaggy.data import ImageItem
from jaggy.errors import ArgumentError
from jaggy.models import load_model
from jaggy.train._data import Augment, parse_augment, split_heldout

CLASSES = ["apple", "banana", "cherry", "date", "elder"]


def coloured_folder(root, per_class=6, classes=CLASSES):
    """One class folder per colour: images are noise plus a class-specific colour."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        colour = np.array([(c * 53) % 256, (c * 97 + 40) % 256, (c * 151 + 80) % 256]) / 255
        for i in range(per_class):
            image = rng.random((40, 40, 3)) * 0.3 + colour * 0.7
            Image.fromarray((image * 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_parse_augment():
    assert parse_augment("translate:8,scale:0.1") == Augment(translate=8, scale=0.1)
    assert parse_augment(None) == Augment() and str(parse_augment("none")) == "none"
    assert str(parse_augment("crop:0.35,flip")) == "crop:0.35,flip"
    for bad in ("translate:-1", "scale:2", "wobble:3", "crop:0"):
        with pytest.raises(ArgumentError, match="--augment"):
            parse_augment(bad)


def test_heldout_split_is_seeded_and_per_class():
    items = [ImageItem(i, f"{i}", f"{i}.png", i % 3) for i in range(30)]
    train, heldout = split_heldout(items, 0.2, seed=4)
    assert sorted(i.index for i in train + heldout) == list(range(30))
    assert [sum(i.label == c for i in heldout) for c in range(3)] == [2, 2, 2]
    assert split_heldout(items, 0.2, seed=4) == (train, heldout)


def test_train_on_an_image_folder_with_a_new_head(tmp_path, capsys):
    data = coloured_folder(tmp_path / "data")
    out = tmp_path / "run"
    args = [
        "train",
        "py:tinynets:tiny",
        str(data),
        "--augment",
        "translate:3,scale:0.1",
        "--remedy",
        "blurpool:3",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--lr",
        "0.05",
        "--random-weights",
        "--protocol",
        "crop",
        "--steps",
        "3",
        "--k",
        "2",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main(args) == 0, capsys.readouterr().err
    record = json.loads((out / "train.json").read_text())
    assert record["class_names"] == CLASSES
    assert record["dataset"]["n_train"] + record["dataset"]["n_heldout"] == 30
    row = record["variants"][0]
    assert row["history"][-1]["loss"] < row["history"][0]["loss"]
    assert row["remedies"] == ["blurpool:3:reflect"]
    assert set(row["by_image_distance"]) == {"pixels", "features"}
    assert "crop" in row["by_protocol"] and "accuracy" in row["overall"]
    assert len(row["image_distance"]["pixels"]) == record["dataset"]["n_heldout"]
    loaded = load_model(
        "py:tinynets:tiny", checkpoint=out / "checkpoint.pt", remedies=["blurpool:3"]
    )
    assert loaded.class_names == CLASSES and loaded.module.head.out_features == 5
    audit = record["audit_with"].split()[1:] + [
        str(out / "split" / "heldout.txt"),
        "--protocol",
        "crop",
        "--steps",
        "3",
        "--no-progress",
        "--out",
        str(tmp_path / "again"),
    ]
    assert main(audit) == 0
    ours = json.loads((out / "audit" / "summary.json").read_text())["protocols"]["crop"]
    again = json.loads((tmp_path / "again" / "summary.json").read_text())["protocols"]["crop"]
    assert again["accuracy"] == ours["accuracy"]
    # the folder is ours now: a second run refuses to replace it
    assert main(args) == 2
    assert "exists already" in capsys.readouterr().err


def test_distill_on_unlabelled_images_lowers_the_kl(tmp_path, capsys):
    data = tmp_path / "loose"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(40):
        image = (rng.random((36, 36, 3)) * 255).astype(np.uint8)
        Image.fromarray(image).save(data / f"{i:02d}.png")
    out = tmp_path / "d"
    args = [
        "train",
        "py:tinynets:tiny",
        str(data),
        "--distill",
        "--remedy",
        "blurpool:4",
        "--epochs",
        "6",
        "--batch-size",
        "8",
        "--lr",
        "0.05",
        "--temperature",
        "2",
        "--protocol",
        "crop",
        "--steps",
        "3",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main(args) == 0, capsys.readouterr().err
    record = json.loads((out / "train.json").read_text())
    distill = record["variants"][0]["distill"]
    assert distill["kl_heldout_after"] < distill["kl_heldout_before"]
    assert record["experiment"] == "distill"


def test_train_refuses_bad_input_before_work(tmp_path, capsys):
    data = coloured_folder(tmp_path / "data", classes=CLASSES[:3], per_class=2)
    out = tmp_path / "x"
    assert main(["train", "py:tinynets:tiny", str(data), "--out", str(out)]) == 2
    assert "at least 5 classes" in capsys.readouterr().err
    assert main(["train", "py:tinynets:tiny", str(data), "--distill", "--out", str(out)]) == 2
    assert "--remedy" in capsys.readouterr().err
    assert (
        main(["train", "py:tinynets:tiny", str(data), "--augment", "zoom:2", "--out", str(out)])
        == 2
    )
    assert not out.exists()
    loose = tmp_path / "loose"
    loose.mkdir()
    Image.new("RGB", (32, 32)).save(loose / "a.png")
    assert main(["train", "py:tinynets:tiny", str(loose), "--no-audit", "--out", str(out)]) == 2
    assert "not an ImageFolder" in capsys.readouterr().err
