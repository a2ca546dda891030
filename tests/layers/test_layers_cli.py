"""`jaggy layers` end to end: a tiny net on synthetic images, argument errors, and (slow) the
embedded EfficientNet-Lite0 on the sample photos."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from jaggy.cli import main


def layers(*args):
    return main(["layers", *args, "--no-progress"])


def test_tiny_net_on_a_folder(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code = layers("py:tinynets:tiny", str(image_folder), "--shifts", "4", "--out", str(out))
    assert code == 0
    data = json.loads((out / "layers.json").read_text())
    assert data["total_stride"] == 4 and data["n_images"] == 6
    assert [layer["cumulative_stride"] for layer in data["layers"]] == [2, 2, 4, 4]
    assert data["protocol"]["name"] == "crop" and data["protocol"]["steps"] == 5
    assert data["run"]["threads"] >= 1 and data["model_info"]["spec"] == "py:tinynets:tiny"
    frame = pd.read_parquet(out / "layers.parquet")
    assert frame["image_id"].nunique() == 6
    for name in ("error_vs_depth.png", "error_vs_shift.png", "feature_maps.png"):
        assert (out / name).stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "total stride 4" in printed and "results in" in printed


@pytest.mark.parametrize("protocol", ["circular", "fourier"])
def test_other_shift_protocols(image_folder, tmp_path, protocol):
    out = tmp_path / protocol
    code = layers(
        "py:tinynets:tiny",
        str(image_folder),
        "--images",
        "2",
        "--shifts",
        "3",
        "--protocol",
        protocol,
        "--fourier-step",
        "0.5",
        "--path",
        "horizontal",
        "--no-figures",
        "--out",
        str(out),
    )
    assert code == 0
    data = json.loads((out / "layers.json").read_text())
    assert data["periodic"] is True
    dx = [s["content_dx"] for s in data["shifts"]]
    assert dx == ([0.0, 1.0, 2.0, 3.0] if protocol == "circular" else [0.0, 0.5, 1.0, 1.5])
    assert not (out / "feature_maps.png").exists()


def test_list_layers_needs_no_images(capsys):
    assert layers("py:tinynets:tiny", "--list-layers") == 0
    printed = capsys.readouterr().out
    assert "features.0" in printed and "total stride: 4" in printed


@pytest.mark.parametrize(
    "args",
    [
        ["--shifts", "0"],
        ["--batch-size", "0"],
        ["--threads", "0"],
        ["--show-layer", "nope"],
        ["--fourier-step", "-1", "--protocol", "fourier"],
    ],
)
def test_bad_arguments_exit_2(image_folder, tmp_path, args, capsys):
    code = layers("py:tinynets:tiny", str(image_folder), "--out", str(tmp_path / "x"), *args)
    assert code == 2
    assert "error" in capsys.readouterr().err


def test_no_images_and_unknown_protocol(tmp_path):
    assert layers("py:tinynets:tiny", "--out", str(tmp_path / "x")) == 2
    with pytest.raises(SystemExit) as exc:
        layers("py:tinynets:tiny", "--protocol", "black")
    assert exc.value.code == 2


@pytest.mark.slow
def test_efficientnet_lite0_on_the_sample_photos(tmp_path):
    out = tmp_path / "lite0"
    code = layers(
        "jaggy:efficientnet_lite0",
        "--samples",
        "--images",
        "2",
        "--shifts",
        "4",
        "--show-layer",
        "blocks.1.0.conv_dw",
        "--out",
        str(out),
    )
    assert code == 0
    data = json.loads((out / "layers.json").read_text())
    assert data["total_stride"] == 32 and data["n_images"] == 2
    assert data["images"] == ["sample/chelsea", "sample/coffee"]
    by = {layer["name"]: layer for layer in data["layers"]}
    stem = by["conv_stem"]
    assert stem["stride"] == 2 and stem["aliasing_energy"] is not None
    # zero padding: even a shift that is a multiple of the stride is not exact under circular
    # shifts, but stride-2 maps are much closer at even shifts than at odd ones
    errors = stem["equivariance_error"]
    assert errors[2] < errors[1] and errors[4] < errors[3]
    sub = [layer for layer in data["layers"] if layer["subsampling"]]
    assert len(sub) == 5 and all(layer["aliasing_energy"] is not None for layer in sub)
    assert sum(layer["aliasing_energy_before_nonlinearity"] is not None for layer in sub) == 4
    assert (out / "feature_maps.png").exists()
