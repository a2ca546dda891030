"""`jaggy train --experiment canvas`: a tiny run produces every field, is seeded, and its
checkpoints load in `jaggy audit`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from jaggy.cli import main
from jaggy.metrics import list_metrics
from jaggy.models import load_model
from jaggy.train import run_canvas_experiment
from jaggy.train._experiment import VARIANTS, tiny_config
from jaggy.train.canvasnet import CANVAS_SPEC

VARIANT_FIELDS = {
    "name",
    "description",
    "augment",
    "remedies",
    "start",
    "seed",
    "parameters",
    "checkpoint",
    "audit",
    "audit_with",
    "boxes",
    "history",
    "seconds",
    "overall",
    "accuracy",
    "by_size",
    "by_position_density",
    "by_baseline_position_density",
    "by_image_distance",
    "by_position",
    "train_positions",
    "image_distance",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("canvas") / "run"
    code = main(
        [
            "train",
            "--experiment",
            "canvas",
            "--quick",
            "--threads",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out, json.loads((out / "train.json").read_text())


def test_tiny_run_has_every_variant_and_field(tiny_run):
    out, record = tiny_run
    assert [v["name"] for v in record["variants"]] == list(VARIANTS)
    for key in (
        "config",
        "seeds",
        "dataset",
        "typicality",
        "metrics",
        "effects",
        "seconds",
        "machine",
        "figures",
    ):
        assert key in record
    assert record["typicality"]["k"] == 3
    assert set(record["typicality"]["spaces"]) == {"pixels", "features"}
    assert set(record["seconds"]) == {"wall", "cpu"}
    sizes = [str(s) for s in record["config"]["eval_sizes"]]
    for variant in record["variants"]:
        assert VARIANT_FIELDS <= set(variant), VARIANT_FIELDS - set(variant)
        for metric in list_metrics():
            assert metric in variant["overall"]
        assert set(variant["by_size"]) == set(sizes)
        assert set(variant["by_position"]) == set(sizes)
        assert set(variant["by_image_distance"]) == {"pixels", "features"}
        for group in variant["by_image_distance"]["pixels"]:
            assert group["n_images"] >= 1 and "ci95" in group["accuracy"]
        assert variant["by_position_density"]
        assert len(variant["image_distance"]["features"]) == record["dataset"]["n_eval_images"]
        for phase in ("train", "audit", "analysis"):
            assert set(variant["seconds"][phase]) == {"wall", "cpu"}
        assert (out / variant["audit"] / "summary.json").is_file()
        assert (out / variant["checkpoint"]).is_file()
    distilled = next(v for v in record["variants"] if v["start"] == "distill")
    assert distilled["distill"]["kl_heldout_after"] >= 0
    assert {e["variant"] for e in record["effects"]} == set(VARIANTS) - {"baseline"}
    for name in record["figures"].values():
        assert (out / name).stat().st_size > 1000


def test_every_canvas_position_is_audited_once_per_size(tiny_run):
    out, record = tiny_run
    canvas = record["config"]["geometry"]["canvas"]
    for variant in record["variants"][:1]:
        for size, cells in variant["by_position"].items():
            side = canvas - int(size) + 1
            covered = np.zeros((side, side), dtype=int)
            for cell in cells:
                covered[
                    cell["y"] : cell["y"] + cell["height"], cell["x"] : cell["x"] + cell["width"]
                ] += 1
            assert (covered == 1).all()


def test_position_cells_carry_the_engine_summary(tiny_run):
    out, record = tiny_run
    variant = record["variants"][0]
    summary = json.loads((out / variant["audit"] / "summary.json").read_text())["protocols"]
    for cells in variant["by_position"].values():
        for cell in cells:
            assert cell["accuracy"] == summary[cell["key"]]["accuracy"]


def test_boxes_are_coco_with_the_photographers_bias(tiny_run, tmp_path):
    from pycocotools.coco import COCO

    out, record = tiny_run
    coco = COCO(str(out / "data" / "boxes.json"))
    canvas = record["config"]["geometry"]["canvas"]
    boxes = np.array([a["bbox"] for a in coco.dataset["annotations"]], dtype=float)
    assert len(boxes) == record["dataset"]["n_train"]
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= canvas).all()
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    assert abs(centres.mean() - canvas / 2) < 1.5  # centred in the canvas
    assert len(coco.getCatIds()) == 10
    # jaggy bias reads them: the bias that was trained in
    assert main(["bias", str(out / "data" / "boxes.json"), "--out", str(tmp_path / "bias")]) == 0
    bias = json.loads((tmp_path / "bias" / "bias.json").read_text())
    assert bias["n_boxes"] == len(boxes)
    augmented = json.loads((out / "variants" / "augment" / "boxes.json").read_text())
    spread = np.array([a["bbox"][0] for a in augmented["annotations"]]).std()
    assert spread > boxes[:, 0].std()  # augmentation spreads the positions


def test_checkpoint_loads_in_jaggy_audit(tiny_run, tmp_path):
    out, record = tiny_run
    variant = next(v for v in record["variants"] if v["name"] == "blurpool")
    loaded = load_model(
        CANVAS_SPEC, checkpoint=out / variant["checkpoint"], remedies=variant["remedies"]
    )
    assert loaded.preprocessing.input_size == record["config"]["geometry"]["canvas"]
    assert loaded.class_names == [str(d) for d in range(10)]
    assert loaded.weights_hash() == variant["weights_sha256"]
    args = variant["audit_with"].split()[1:] + [
        "--out",
        str(tmp_path / "a"),
        "--images",
        "2",
        "--no-progress",
        "--batch-size",
        "64",
    ]
    assert main(args) == 0
    ours = json.loads((out / variant["audit"] / "summary.json").read_text())["protocols"]
    again = json.loads((tmp_path / "a" / "summary.json").read_text())["protocols"]
    assert set(again) == set(ours)


def test_same_seed_same_checkpoint_bytes(tmp_path):
    def train(name, seed):
        config = tiny_config(
            str(tmp_path / name),
            variants=("baseline",),
            figures=False,
            threads=1,
            seed=seed,
            eval_sizes=(20,),
            eval_images=2,
        )
        run_canvas_experiment(config, progress=False)
        return (tmp_path / name / "variants" / "baseline" / "checkpoint.pt").read_bytes()

    first = train("a", 0)
    assert train("b", 0) == first
    assert train("c", 1) != first


def test_bad_arguments_fail_before_work(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["train", "--experiment", "canvas", "--epochs", "0", "--out", str(out)]) == 2
    assert main(["train", "--experiment", "canvas", "--size", "100", "--out", str(out)]) == 2
    assert main(["train", "--experiment", "canvas", "m", "d", "--out", str(out)]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert not out.exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    assert (
        main(["train", "--experiment", "canvas", "--quick", "--out", str(tmp_path / "full")]) == 2
    )
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep"


def test_remedied_variant_keeps_the_base_weights(tiny_run):
    out, record = tiny_run
    base = torch.load(out / "variants/baseline/checkpoint.pt", weights_only=True)["state_dict"]
    remedied = torch.load(out / "variants/baseline_blurpool/checkpoint.pt", weights_only=True)[
        "state_dict"
    ]
    assert base.keys() == remedied.keys()
    assert all(torch.equal(base[k], remedied[k]) for k in base)


def test_cli_prints_the_variant_table(tiny_run):
    _, record = tiny_run
    from jaggy.cli.train import format_variant_table

    text = format_variant_table(record)
    assert all(v["name"] in text for v in record["variants"])


def test_report_has_a_training_section_with_the_figures(tiny_run, tmp_path):
    out, record = tiny_run
    page = tmp_path / "report.html"
    assert main(["report", str(out), "--out", str(page)]) == 0
    html = page.read_text()
    assert 'id="train"' in html and "Training: learning invariance from data" in html
    assert html.count("<svg") >= 4  # maps, typicality, size
    for variant in record["variants"]:
        assert variant["name"] in html
    # strings from the file are shown as text
    hostile = json.loads((out / "train.json").read_text())
    hostile["variants"][0]["name"] = "<script>alert(1)</script>"
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "train.json").write_text(json.dumps(hostile))
    assert main(["report", str(folder), "--out", str(tmp_path / "h.html")]) == 0
    text = (tmp_path / "h.html").read_text()
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
