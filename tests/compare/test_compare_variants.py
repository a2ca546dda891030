"""`jaggy compare`: one row per variant, numbers recomputable from each variant's parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jaggy.cli import main
from jaggy.compare._compare import parse_variant
from jaggy.errors import ArgumentError
from jaggy.metrics import summarize_predictions
from tinynets import TinyCNN


def test_compare_rows_recompute_from_each_variant_parquet(image_folder, tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            "py:tinynets:tiny_jumpy",
            str(image_folder),
            "--remedy",
            "blurpool:3",
            "--remedy",
            "aps+circular",
            "--protocol",
            "circular",
            "--protocol",
            "crop",
            "--protocol",
            "aps_roll",
            "--steps",
            "6",
            "--out",
            str(out),
            "--no-progress",
            "--workers",
            "0",
            "--batch-size",
            "8",
        ]
    )
    assert code == 0
    data = json.loads((out / "compare.json").read_text())
    rows = {row["variant"]: row for row in data["variants"]}
    assert list(rows) == ["base", "blurpool:3", "aps+circular"]
    for row in rows.values():
        assert row["ms_per_image"] > 0 and row["params"] > 0
        assert set(row["protocols"]) == {"circular", "crop", "aps_roll"}
        recomputed = summarize_predictions(out / row["run"] / "predictions.parquet")
        assert recomputed == row["protocols"]
    assert rows["blurpool:3"]["remedies"] == ["blurpool:3:reflect"]
    assert rows["base"]["ms_ratio_to_base"] == 1.0
    # the study's point: remedies help partially; APS with circular padding is exact
    base = rows["base"]["protocols"]["circular"]
    exact = rows["aps+circular"]["protocols"]["circular"]
    assert base["p_top1_change"]["value"] > 0
    assert exact["p_top1_change"]["value"] == 0.0
    assert exact["path_consistency"]["value"] == 1.0
    # APS's own number: its random rolls never change the answer
    assert rows["aps+circular"]["protocols"]["aps_roll"]["consistency"]["value"] == 1.0
    assert exact["mac"]["value"] < 1e-5
    assert "aps+circular" in capsys.readouterr().out


def test_compare_needs_valid_variants(image_folder, tmp_path, capsys):
    assert (
        main(["compare", "py:tinynets:tiny", str(image_folder), "--out", str(tmp_path / "x")]) == 2
    )
    assert "at least one --remedy" in capsys.readouterr().err
    assert (
        main(
            [
                "compare",
                "py:tinynets:tiny",
                str(image_folder),
                "--remedy",
                "sharpen",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "unknown remedy" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ArgumentError):
        parse_variant("+")


class CircularBranchy(TinyCNN):
    """Traces faithfully, except once circular padding is on: then a branch depends on the
    data (the trace's noise reaches below -3, real views never do), so a traced graph of the
    circular variant fails its check against eager while the base model's passes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        if self.features[0].padding_mode == "circular" and bool(x.min() < -3):
            return -logits
        return logits


def circular_branchy() -> torch.nn.Module:
    return CircularBranchy(num_classes=1000)


def test_a_graph_refused_in_one_variant_is_recorded_and_said(image_folder, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", f"py:{Path(__file__).stem}:circular_branchy", str(image_folder)]
    args += ["--remedy", "circular", "--protocol", "crop", "--steps", "3", "--graph", "frozen"]
    args += ["--batch-size", "4", "--out", str(out), "--no-progress", "--workers", "0"]
    assert main(args) == 0
    rows = {
        row["variant"]: row for row in json.loads((out / "compare.json").read_text())["variants"]
    }
    assert rows["base"]["graph"] == "frozen" and "graph_refused" not in rows["base"]
    assert rows["circular"]["graph"] == "eager"
    assert rows["circular"]["graph_refused"].startswith("outputs differ from eager")
    said = [line for line in capsys.readouterr().out.splitlines() if "--graph" in line]
    assert said == [
        f"circular: --graph frozen refused, ran eagerly: {rows['circular']['graph_refused']}"
    ]
