"""`jaggy finetune`: seeded, learns, and writes a checkpoint that `jaggy audit` loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from jaggy.cli import main
from jaggy.errors import DataError
from jaggy.models import load_model
from jaggy.train import FinetuneConfig, finetune


def two_colour_dataset(folder, n=16):
    """Reddish images are class 1, bluish class 2: learnable in a few steps."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = ["file,class"]
    for i in range(n):
        label = 1 + i % 2
        image = rng.random((40, 40, 3)) * 0.3
        image[..., 0 if label == 1 else 2] += 0.7
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"im{i}.png")
        lines.append(f"im{i}.png,{label}")
    labels = folder.parent / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    return labels


def config(folder, labels, out, **kw):
    return FinetuneConfig(
        model="py:tinynets:tiny",
        data=str(folder),
        labels=str(labels),
        out=str(out),
        batch_size=4,
        lr=0.05,
        **kw,
    )


def test_finetune_learns_is_seeded_and_checkpoint_loads(tmp_path):
    labels = two_colour_dataset(tmp_path / "data")
    a = finetune(
        config(tmp_path / "data", labels, tmp_path / "a", epochs=4, remedies=["blurpool:3"]),
        progress=False,
    )
    b = finetune(
        config(tmp_path / "data", labels, tmp_path / "b", epochs=4, remedies=["blurpool:3"]),
        progress=False,
    )
    assert a.history[-1]["loss"] < a.history[0]["loss"]
    assert a.history == b.history
    state_a = torch.load(a.checkpoint, weights_only=True)["state_dict"]
    state_b = torch.load(b.checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    loaded = load_model("py:tinynets:tiny", remedies=["blurpool:3"], checkpoint=a.checkpoint)
    assert torch.equal(loaded.module.head.weight, state_a["head.weight"])
    record = json.loads((tmp_path / "a" / "train.json").read_text())
    assert "--remedy blurpool:3 --checkpoint" in record["audit_with"]


def test_finetune_cli_then_audit(tmp_path, capsys):
    labels = two_colour_dataset(tmp_path / "data")
    out = tmp_path / "ft"
    assert (
        main(
            [
                "finetune",
                "py:tinynets:tiny",
                str(tmp_path / "data"),
                "--labels",
                str(labels),
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "audit it with" in capsys.readouterr().out
    assert (
        main(
            [
                "audit",
                "py:tinynets:tiny",
                str(tmp_path / "data"),
                "--labels",
                str(labels),
                "--checkpoint",
                str(out / "checkpoint.pt"),
                "--protocol",
                "crop",
                "--steps",
                "3",
                "--out",
                str(tmp_path / "audit"),
                "--no-progress",
                "--workers",
                "0",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "audit" / "summary.json").read_text())
    assert summary["protocols"]["crop"]["accuracy"]["value"] is not None


def test_finetune_refuses_unlabelled_data_and_bad_arguments(tmp_path, image_folder):
    with pytest.raises(DataError, match="labelled"):
        finetune(
            FinetuneConfig(
                model="py:tinynets:tiny", data=str(image_folder), out=str(tmp_path / "x")
            ),
            progress=False,
        )
    assert (
        main(
            [
                "finetune",
                "py:tinynets:tiny",
                str(image_folder),
                "--epochs",
                "0",
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
