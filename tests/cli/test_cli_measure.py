"""`jaggy audit --measure features[:LAYER]`: representations from the command line, the
refusal of class metrics for a model without a head, the threshold and the saved vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaggy.cli import main
from jaggy.results import read_features

BASE = ["--no-progress", "--batch-size", "8", "--workers", "0", "--protocol", "neighbours"]


def audit(model, folder, out, *args):
    return main(["audit", f"py:tinynets:{model}", str(folder), *BASE, *args, "--out", str(out)])


def test_headless_model_refuses_class_metrics_with_one_line(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert audit("tiny_headless", image_folder, out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no classifier head" in err and "--measure features" in err
    assert not out.exists()  # refused before any work


def test_headless_model_audits_with_measure_features(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code = audit(
        "tiny_headless",
        image_folder,
        out,
        "--measure",
        "features",
        "--save-features",
        "--fail-under",
        "neighbours:fooling_rate=1",
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "cos dist" in printed and "fooled" in printed and "P(change)" not in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["representation"]["headless"] is True
    assert read_features(out).shape == (6 * 16, 16)


def test_threshold_is_recorded_and_changes_the_rates(image_folder, tmp_path):
    rates = {}
    for tau in ("0.0001", "1.5"):
        out = tmp_path / tau
        assert (
            audit("tiny_jumpy", image_folder, out, "--measure", "both", "--feature-threshold", tau)
            == 0
        )
        summary = json.loads((out / "summary.json").read_text())
        assert summary["representation"]["threshold"] == float(tau)
        entry = summary["protocols"]["neighbours"]
        rates[tau] = entry["representation_change_rate"]["value"]
        assert entry["p_top1_change"]["value"] is not None  # class metrics beside them
    assert rates["0.0001"] > 0.5 and rates["1.5"] == 0.0


def test_named_layer_from_the_command_line(image_folder, tmp_path):
    out = tmp_path / "run"
    assert (
        audit(
            "tiny_jumpy",
            image_folder,
            out,
            "--measure",
            "logits,features:features.1",
            "--save-features",
        )
        == 0
    )
    vectors = read_features(out)
    assert vectors.shape[1] == 8 and np.all(vectors >= 0)  # the first ReLU's 8 channels


@pytest.mark.parametrize(
    "args, message",
    [
        (["--measure", "features:nowhere"], "no layer 'nowhere'"),
        (["--measure", "logits,logits"], "--measure: use logits"),
        (["--save-features"], "--save-features writes"),
        (["--measure", "features", "--feature-threshold", "0"], "--feature-threshold"),
    ],
)
def test_bad_measure_arguments_exit_2(image_folder, tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert audit("tiny_jumpy", image_folder, out, *args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
