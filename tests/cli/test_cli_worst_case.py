"""`jaggy audit --worst-case KIND [--exhaustive]` end to end on a tiny net."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from jaggy.cli import main

BASE = ["--no-progress", "--batch-size", "32", "--workers", "0"]


def audit(args, out):
    return main(["audit", "py:tinynets:tiny_jumpy", *BASE, *args, "--out", str(out)])


def test_worst_case_alone_runs_only_the_sets(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code = audit([str(image_folder), "--worst-case", "circular", "--worst-case", "random10"], out)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["protocols"]) == ["worst@circular", "worst@random10"]
    printed = capsys.readouterr().out
    assert "worst@circular" in printed and "robust" in printed
    table = pq.read_table(out / "predictions.parquet")
    assert "angle" in table.column_names
    manifest = json.loads((out / "manifest.json").read_text())
    kinds = [p.get("kind") for p in manifest["protocols"]]
    assert kinds == ["circular", "random10"] and not manifest["config"]["exhaustive"]


def test_worst_case_beside_protocols_and_the_gate(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    args = [str(image_folder), "--protocol", "crop", "--steps", "3", "--worst-case", "fourier"]
    assert audit([*args, "--exhaustive", "--fail-under", "worst:robust_accuracy=0"], out) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["protocols"]) == ["crop", "worst@fourier"]
    views = pq.read_table(out / "metrics.parquet").to_pandas().set_index("protocol")["n_views"]
    assert (views.loc["worst@fourier"] == 14).all()  # --exhaustive: every view
    # a bound no set can meet fails the gate (exit 1)
    code = audit([*args, "--overwrite", "--fail-under", "worst:robust_accuracy=1.01"], out)
    assert code == 1
    assert "robust_accuracy" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--worst-case", "wobble"], "unknown --worst-case 'wobble'"),
        (["--worst-case", "grid", "--worst-case", "grid"], "twice"),
        (["--exhaustive"], "--exhaustive applies to the worst-case sets"),
    ],
)
def test_bad_worst_case_arguments_exit_2_before_any_work(
    image_folder, tmp_path, capsys, args, message
):
    assert audit([str(image_folder), *args], tmp_path / "run") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
