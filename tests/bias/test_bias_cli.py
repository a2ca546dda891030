"""`jaggy bias` end to end: outputs, the input frame of a model, bad arguments."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from bias_files import known_boxes, write_all_formats, write_coco

from jaggy.cli import main
from tinynets import TINY_PREPROCESSING


def test_bias_writes_statistics_boxes_and_figures(tmp_path, capsys):
    boxes = known_boxes(30)
    path = write_coco(tmp_path / "instances.json", boxes)
    out = tmp_path / "out"
    assert main(["bias", str(path), "--out", str(out), "--model", "py:tinynets:tiny"]) == 0
    stats = json.loads((out / "bias.json").read_text())
    assert stats["n_boxes"] == 30 and stats["written_by"] == "jaggy bias"
    frame = stats["input_frame"]
    assert frame["input_size"] == TINY_PREPROCESSING["input_size"]
    assert frame["n_boxes"] + frame["n_outside"] == 30
    table = pq.read_table(out / "boxes.parquet")
    assert table.num_rows == 30
    assert {"image_id", "object_index", "class", "cx", "size", "input_cx", "input_cut"} <= set(
        table.column_names
    )
    for name in ("bias_image.png", "bias_input.png", "bias_classes.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "30 boxes on 4 images" in capsys.readouterr().out
    # a second run into the same folder replaces jaggy's own files
    assert main(["bias", str(path), "--out", str(out), "--no-figures"]) == 0


def test_bias_formats_from_the_cli(tmp_path):
    paths = write_all_formats(tmp_path, known_boxes(12))
    for fmt, (path, images) in paths.items():
        args = ["bias", str(path), "--out", str(tmp_path / fmt), "--no-figures", "--format", fmt]
        if images is not None:
            args += ["--images", str(images)]
        assert main(args) == 0, fmt


def test_bias_refuses_bad_input_with_exit_2(tmp_path, capsys):
    assert main(["bias", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert "do not exist" in capsys.readouterr().err
    path = write_coco(tmp_path / "instances.json", known_boxes(4))
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "bias.json").write_text('{"mine": true}')
    assert main(["bias", str(path), "--out", str(foreign)]) == 2
    assert "not written by jaggy bias" in capsys.readouterr().err
    assert (foreign / "bias.json").read_text() == '{"mine": true}'
    (tmp_path / "bad.json").write_text("{")
    assert main(["bias", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o2")]) == 2
    assert "bad.json:1:2: not valid JSON" in capsys.readouterr().err


def test_python_api_matches_the_cli(tmp_path):
    import jaggy

    path = write_coco(tmp_path / "instances.json", known_boxes(10))
    result = jaggy.bias(path, tmp_path / "api", figures=False)
    assert isinstance(result, jaggy.BiasResult)
    assert main(["bias", str(path), "--out", str(tmp_path / "cli"), "--no-figures"]) == 0
    from_cli = json.loads((tmp_path / "cli" / "bias.json").read_text())
    assert from_cli["center_mean"] == result.statistics["center_mean"]
    assert (
        from_cli["per_class"]
        == json.loads((tmp_path / "api" / "bias.json").read_text())["per_class"]
    )
