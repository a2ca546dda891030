"""layers.json, layers.parquet and figures from a LayersReport (tiny net, synthetic images)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from jaggy.layers import analyze_layers, shift_protocol, write_layers_outputs
from jaggy.layers._outputs import LAYERS_SCHEMA, layers_table, summary_lines


@pytest.fixture(scope="module")
def report():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, padding_mode="circular"),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, stride=2, padding=1, padding_mode="circular"),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    ).eval()
    g = torch.Generator().manual_seed(1)
    images = [(f"img{i}", torch.randn(3, 24, 24, generator=g)) for i in range(2)]
    return analyze_layers(net, images, shift_protocol("circular", 24, 5), model_name="tiny")


def test_json_has_the_contracted_fields(report, tmp_path):
    write_layers_outputs(report, tmp_path, extra={"run": {"note": "test"}})
    data = json.loads((tmp_path / "layers.json").read_text())
    assert data["total_stride"] == 4
    assert data["model"] == "tiny" and data["n_images"] == 2 and data["run"] == {"note": "test"}
    assert len(data["shifts"]) == 6 and data["shifts"][3] == {
        "index": 3,
        "dx": 3.0,
        "dy": 3.0,
        "content_dx": 3.0,
        "content_dy": 3.0,
    }
    names = [layer["name"] for layer in data["layers"]]
    assert names == ["0", "1", "2", "3", "4"]
    for layer in data["layers"]:
        assert {
            "name",
            "kind",
            "stride",
            "cumulative_stride",
            "out_shape",
            "equivariance_error",
            "aliasing_energy",
        } <= set(layer)
        assert len(layer["equivariance_error"]) == 6 and layer["equivariance_error"][0] == 0.0
    by = {layer["name"]: layer for layer in data["layers"]}
    assert by["2"]["stride"] == 2 and by["2"]["cumulative_stride"] == 2
    assert by["4"]["cumulative_stride"] == 4 and by["4"]["out_shape"] == [6, 6, 6]
    assert by["0"]["aliasing_energy"] is None  # not a subsampling layer
    assert 0.0 <= by["2"]["aliasing_energy"] <= 1.0 and by["2"]["nonlinearity"] == "1"
    assert by["0"]["mean_error_on_grid"] < 1e-5  # circular padding, stride 1
    assert by["2"]["mean_error_off_grid"] > 1e-2
    assert data["subsampling"] == ["2", "4"]
    assert len(data["pooled"]["relative_change"]) == 6
    assert data["pooled"]["relative_change"][4] < 1e-5  # a multiple of the total stride


def test_parquet_is_long_format(report, tmp_path):
    write_layers_outputs(report, tmp_path, figures=False)
    frame = pd.read_parquet(tmp_path / "layers.parquet")
    assert list(frame.columns) == LAYERS_SCHEMA.names
    assert len(frame) == 2 * (5 + 2) * 6  # images x (layers + pooled + logits) x views
    assert set(frame["layer"]) == {"0", "1", "2", "3", "4", "pooled", "logits"}
    layer2 = frame[(frame["layer"] == "2") & (frame["image_id"] == "img0")]
    assert layer2["on_grid"].tolist() == [True, False, True, False, True, False]
    assert np.allclose(layer2["cell_shift_x"], np.arange(6) / 2)
    means = frame[frame["layer"] == "4"].groupby("shift")["error"].mean().to_numpy()
    assert np.allclose(means, report.mean_errors()[4], equal_nan=True)
    assert frame.loc[frame["layer"] == "0", "aliasing_energy"].isna().all()
    assert frame.loc[frame["layer"] == "2", "aliasing_energy"].notna().all()


def test_figures_are_pngs_and_no_temporary_files_remain(report, tmp_path):
    written = write_layers_outputs(report, tmp_path)
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "layers.json",
            "layers.parquet",
            "error_vs_depth.png",
            "error_vs_shift.png",
            "feature_maps.png",
        ]
    )
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    maps = report.feature_maps
    assert maps.view_indices == list(range(6))
    assert all(len(v) == 6 for v in maps.maps.values()) and len(maps.inputs) == 6


def test_table_rows_and_summary(report):
    table = layers_table(report)
    assert table.schema == LAYERS_SCHEMA
    lines = summary_lines(report)
    assert lines[0].startswith("total stride 4")
    assert any("aliasing" in line for line in lines)
