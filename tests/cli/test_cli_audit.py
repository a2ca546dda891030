"""`jaggy audit` end to end on a tiny net: outputs, argument validation, the release gate."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from jaggy.cli import main
from jaggy.metrics import summarize_predictions

BASE = ["--steps", "4", "--size", "20", "--no-progress", "--batch-size", "8", "--workers", "0"]


def audit(args, out):
    return main(["audit", "py:tinynets:tiny", *BASE, *args, "--out", str(out)])


def test_audit_writes_predictions_summary_manifest(image_folder, tmp_path):
    out = tmp_path / "run"
    code = audit(
        [
            str(image_folder),
            "--protocol",
            "crop",
            "--protocol",
            "black",
            "--protocol",
            "scale",
            "--protocol",
            "circular",
            "--size",
            "16",
        ],
        out,
    )
    assert code == 0
    table = pq.read_table(out / "predictions.parquet")
    required = {
        "image_id",
        "protocol",
        "view",
        "dx",
        "dy",
        "size",
        "label",
        "top5_ids",
        "top5_probs",
        "p_ref",
        "p_prev_top1",
    }
    assert required <= set(table.column_names)
    assert table.num_rows == 6 * (4 + 4 * 2 + 4 + 4)
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["protocols"]) == ["crop", "black@20", "black@16", "scale", "circular"]
    for entry in summary["protocols"].values():
        assert entry["n_images"] == 6 and entry["n_pairs"] == 6 * 3
        assert set(entry["p_top1_change"]) == {"value", "ci95"}
    # every number of the summary is recomputed from the parquet file alone
    recomputed = summarize_predictions(out / "predictions.parquet", seed=0)
    assert recomputed == summary["protocols"]
    manifest = json.loads((out / "manifest.json").read_text())
    for key in (
        "model",
        "protocols",
        "seed",
        "versions",
        "device",
        "images",
        "started",
        "finished",
        "batch_size",
    ):
        assert key in manifest
    assert manifest["model"]["preprocessing"]["input_size"] == 32
    assert manifest["model"]["preprocessing"]["source"] == "model.jaggy_preprocessing"
    rows = table.to_pydict()
    first = [i for i, v in enumerate(rows["view"]) if v == 0]
    assert all(rows["p_prev_top1"][i] is None for i in first)


def test_same_seed_same_results(image_folder, tmp_path):
    for name in ("a", "b"):
        assert (
            audit([str(image_folder), "--protocol", "inpaint", "--seed", "3"], tmp_path / name) == 0
        )
    a = pq.read_table(tmp_path / "a" / "predictions.parquet")
    b = pq.read_table(tmp_path / "b" / "predictions.parquet")
    assert a.equals(b)
    assert (tmp_path / "a" / "summary.json").read_text() == (
        tmp_path / "b" / "summary.json"
    ).read_text()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--size", "40"], "does not fit"),
        (["--fail-under", "wobble=0.1"], "unknown metric"),
        (["--fail-under", "mac"], "METRIC=VALUE"),
        (["--path", "zigzag"], None),
        (["--batch-size", "0"], "batch-size"),
        (["--remedy", "nonsense"], "remed"),
    ],
)
def test_bad_arguments_fail_before_any_work(image_folder, tmp_path, capsys, args, message):
    out = tmp_path / "never"
    try:
        code = audit([str(image_folder), "--protocol", "black", *args], out)
    except SystemExit as exc:  # argparse choices
        code = exc.code
    assert code == 2
    if message:
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_unknown_model_spec_is_refused(tmp_path, capsys):
    code = main(["audit", "timm:not_a_real_model_name", "--samples", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "unknown timm model" in capsys.readouterr().err


def test_fail_under_gate_direction_follows_the_metric(image_folder, tmp_path):
    out = tmp_path / "gate"
    assert audit([str(image_folder), "--protocol", "crop"], out) == 0
    summary = json.loads((out / "summary.json").read_text())["protocols"]["crop"]
    change, consistency = summary["p_top1_change"]["value"], summary["path_consistency"]["value"]
    gate = ["--resume", "--protocol", "crop"]
    # lower is better: fails when above the bound
    assert (
        audit([str(image_folder), *gate, "--fail-under", f"p_top1_change={change - 0.01}"], out)
        == 1
    )
    assert (
        audit(
            [str(image_folder), *gate, "--fail-under", f"crop:p_top1_change={change + 0.01}"], out
        )
        == 0
    )
    # higher is better: fails when below the bound
    assert (
        audit(
            [str(image_folder), *gate, "--fail-under", f"path_consistency={consistency + 0.01}"],
            out,
        )
        == 1
    )
    assert (
        audit(
            [str(image_folder), *gate, "--fail-under", f"path_consistency={consistency - 0.01}"],
            out,
        )
        == 0
    )


def test_existing_run_needs_resume(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert audit([str(image_folder), "--protocol", "crop"], out) == 0
    assert audit([str(image_folder), "--protocol", "crop"], out) == 2
    assert "--resume" in capsys.readouterr().err
    assert audit([str(image_folder), "--protocol", "crop", "--resume", "--seed", "5"], out) == 2
    assert "seed" in capsys.readouterr().err


def test_python_dash_m_and_console_table(image_folder, tmp_path):
    out = tmp_path / "m"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaggy",
            "audit",
            "py:tinynets:tiny",
            str(image_folder),
            "--protocol",
            "crop",
            "--out",
            str(out),
            *BASE,
        ],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env={
            **__import__("os").environ,
            "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1]),
        },
    )
    assert proc.returncode == 0, proc.stderr
    assert "P(change)" in proc.stdout and "crop" in proc.stdout


def test_fail_under_protocol_names_and_undefined_metrics(image_folder, tmp_path, capsys):
    out = tmp_path / "names"
    # a protocol that is not part of the run is refused before any work
    assert audit([str(image_folder), "--protocol", "crop", "--fail-under", "black:mac=1"], out) == 2
    assert "not a protocol of this run" in capsys.readouterr().err
    assert not out.exists()
    # a bare embed name covers every size; accuracy without labels fails the gate
    assert (
        audit(
            [
                str(image_folder),
                "--protocol",
                "black",
                "--size",
                "16",
                "--fail-under",
                "black:mac=1",
            ],
            out,
        )
        == 0
    )
    assert (
        audit(
            [
                str(image_folder),
                "--protocol",
                "black",
                "--size",
                "16",
                "--resume",
                "--fail-under",
                "accuracy=0.5",
            ],
            out,
        )
        == 1
    )
    assert "undefined (no image has a label)" in capsys.readouterr().err


def test_a_run_where_every_image_was_skipped_is_an_error(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not an image")
    code = audit(
        [str(folder), "--protocol", "crop", "--fail-under", "p_top1_change=0.5"], tmp_path / "out"
    )
    assert code == 2
    assert "every image was skipped" in capsys.readouterr().err


def test_labels_the_model_does_not_have_are_refused_before_work(image_folder, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("img000.png,500\n")  # the tiny net has 10 classes
    out = tmp_path / "out"
    assert audit([str(image_folder), "--labels", str(labels), "--protocol", "crop"], out) == 2
    assert "label the model does not have" in capsys.readouterr().err
    assert not out.exists()
