"""`jaggy.train(...)`: the Python form of `jaggy train`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import jaggy
from jaggy.errors import ArgumentError

CLASSES = ["a", "b", "c", "d", "e"]


def coloured_folder(root, per_class):
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.random((36, 36, 3)) * 0.3 + c / 8
            Image.fromarray((image * 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_train_on_a_folder_returns_the_checkpoint_and_record(tmp_path):
    data = coloured_folder(tmp_path / "data", per_class=3)
    result = jaggy.train(
        "py:tinynets:tiny",
        data,
        out=tmp_path / "run",
        epochs=1,
        batch_size=8,
        audit=False,
        augment="translate:2",
        progress=False,
        device="cpu",
    )
    assert result.checkpoint.is_file()
    assert result.record["class_names"] == CLASSES
    assert jaggy.load_model("py:tinynets:tiny", checkpoint=result.checkpoint).num_classes == 5


def test_train_checks_its_arguments(tmp_path):
    with pytest.raises(ArgumentError, match="unknown option"):
        jaggy.train("py:tinynets:tiny", tmp_path, out=tmp_path / "x", wobble=1)
    with pytest.raises(ArgumentError, match="unknown experiment"):
        jaggy.train(experiment="mnist")
    with pytest.raises(ArgumentError, match="its own model"):
        jaggy.train("py:tinynets:tiny", experiment="canvas")
    with pytest.raises(ArgumentError, match="unknown option"):
        jaggy.train(experiment="canvas", out=tmp_path / "c", wobble=2)
