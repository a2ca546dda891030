"""Partial invariance: a small synthetic audit run with known per-image values joined with
known boxes; binned means, the reweighting and the join checked against hand computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bias_files import CLASSES, Box, write_coco

from jaggy.bias import run_bias
from jaggy.bias._invariance import (
    DISTANCE_EDGES,
    SIZE_EDGES,
    match_rows,
    uniform_cell_weights,
)
from jaggy.cli import main
from jaggy.data.annotations import read_annotations
from jaggy.results._files import METRICS_FILE
from jaggy.results._metrics_table import write_metrics

SIZES = {f"img{i}.png": (100, 100) for i in range(6)}
# One main box per image (plus a smaller one that must not be chosen), with known geometry
# in a 100 x 100 image: size = side / 100, distance = |centre - (50, 50)| / (50 * sqrt 2).
MAIN = {
    "img0.png": (44, 44, 56, 56),  # size 0.12 -> bin 1, distance 0 -> bin 0
    "img1.png": (38, 38, 62, 62),  # size 0.24 -> bin 2, distance 0
    "img2.png": (5, 5, 45, 45),  # size 0.4 -> bin 3, centre 25: distance 0.5 -> bin 4
    "img3.png": (10, 40, 90, 60),  # size 0.4 -> bin 3, distance 0
    "img4.png": (55, 55, 95, 95),  # size 0.4 -> bin 3, centre 75: distance 0.5 -> bin 4
    "img5.png": (0, 0, 100, 100),  # size 1.0 -> bin 5 (the last bin includes 1), distance 0
}
P_CHANGE = {
    "img0.png": 0.5,
    "img1.png": 0.3,
    "img2.png": 0.2,
    "img3.png": 0.1,
    "img4.png": 0.4,
    "img5.png": 0.0,
}


def _boxes() -> list[Box]:
    boxes = []
    for name, (x0, y0, x1, y1) in MAIN.items():
        boxes.append(Box(name, CLASSES[0], 1, 1, 3, 3))  # tiny box first in the file
        boxes.append(Box(name, CLASSES[1], x0, y0, x1, y1))
    return boxes


def write_run(folder, rows: list[tuple[str, str, float, float]]):
    """A run folder whose metrics.parquet holds rows of (image_id, protocol key,
    p_top1_change, mac), written by the format's owner as an audit writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(rows)
    table = pa.table(
        {
            "image_index": pa.array(range(n), pa.int64()),
            "image_id": [r[0] for r in rows],
            "protocol": [r[1] for r in rows],
            "protocol_name": [r[1].split("@")[0] for r in rows],
            "label": pa.array([-1] * n, pa.int64()),
            "ref_class": pa.array([3] * n, pa.int64()),
            "n_views": pa.array([10] * n, pa.int64()),
            "n_pairs": pa.array([9] * n, pa.int64()),
            "n_nonfinite_views": pa.array([0] * n, pa.int64()),
            "p_top1_change": pa.array([r[2] for r in rows], pa.float64()),
            "mac": pa.array([r[3] for r in rows], pa.float64()),
        }
    )
    write_metrics(folder / METRICS_FILE, [table], ["p_top1_change", "mac"])
    return folder


def test_join_takes_each_images_largest_box_and_bbox_objects_exactly(tmp_path):
    a = read_annotations(write_coco(tmp_path / "i.json", _boxes(), sizes=SIZES))
    box = match_rows(["img2.png", "sub/img3.jpg", "img4.png#0", "img4.png#1", "nope.png"], a)
    corners = [(a.x0[b], a.y0[b], a.x1[b], a.y1[b]) if b >= 0 else None for b in box]
    assert corners[0] == MAIN["img2.png"]
    assert corners[1] == MAIN["img3.png"]  # matched by name without extension
    assert corners[2] == (1, 1, 3, 3) and corners[3] == MAIN["img4.png"]
    assert corners[4] is None


def test_uniform_weights_are_bin_width_times_area_share():
    w = uniform_cell_weights()
    assert w.sum() == pytest.approx(1.0)
    # the disc of radius 0.1 * (half diagonal) around the centre: pi r^2 of the unit square
    r = 0.1 * math.sqrt(0.5)
    assert w[:, 0].sum() == pytest.approx(math.pi * r * r, rel=1e-3)
    assert w[1].sum() == pytest.approx(0.1)  # size bin [0.1, 0.2)


def test_invariance_by_size_position_and_reweighting_by_hand(tmp_path):
    annotations = write_coco(tmp_path / "i.json", _boxes(), sizes=SIZES)
    rows = [(name, "crop", p, 2 * p) for name, p in P_CHANGE.items()]
    rows.append(("unknown.png", "crop", 0.9, 0.9))
    run = write_run(tmp_path / "run", rows)
    result = run_bias(annotations, tmp_path / "out", audit=run, figures=True)
    inv = result.statistics["invariance"]
    assert inv["rows"]["crop"] == {"rows": 7, "matched": 6}
    assert inv["unmatched_rows"] == 1
    by_size = inv["by_size"]["crop"]
    assert by_size["n"] == [0, 1, 1, 3, 0, 1]
    size_bin3 = by_size["metrics"]["p_top1_change"][3]
    assert size_bin3["value"] == pytest.approx((0.2 + 0.1 + 0.4) / 3)
    assert size_bin3["n"] == 3
    assert by_size["metrics"]["p_top1_change"][0]["value"] is None
    assert by_size["metrics"]["mac"][1]["value"] == pytest.approx(1.0)
    by_position = inv["by_position"]["crop"]
    assert by_position["n"] == [4, 0, 0, 0, 2, 0]
    assert by_position["metrics"]["p_top1_change"][4]["value"] == pytest.approx(0.3)
    # reweighting: cells (size bin, distance bin) with their means, by hand
    cells = {(1, 0): [0.5], (2, 0): [0.3], (3, 4): [0.2, 0.4], (3, 0): [0.1], (5, 0): [0.0]}
    weights = uniform_cell_weights()
    mass = sum(weights[c] for c in cells)
    uniform = sum(weights[c] * np.mean(v) for c, v in cells.items()) / mass
    entry = inv["reweighted"]["crop"]["p_top1_change"]
    assert entry["dataset"]["value"] == pytest.approx(np.mean(list(P_CHANGE.values())))
    assert entry["uniform"]["value"] == pytest.approx(uniform)
    assert entry["uniform_coverage"] == pytest.approx(mass)
    lo, hi = entry["uniform"]["ci95"]
    assert lo <= entry["uniform"]["value"] <= hi
    assert (tmp_path / "out" / "invariance_by_size.png").is_file()
    assert (tmp_path / "out" / "invariance_by_position.png").is_file()
    joined = pq.read_table(tmp_path / "out" / "invariance.parquet")
    assert joined.num_rows == 7 and "size_bin" in joined.column_names
    assert list(inv["size_edges"]) == list(SIZE_EDGES)
    assert list(inv["distance_edges"]) == list(DISTANCE_EDGES)


def test_bias_audit_from_the_cli_and_refusals(tmp_path, capsys):
    annotations = write_coco(tmp_path / "i.json", _boxes(), sizes=SIZES)
    run = write_run(tmp_path / "run", [(n, "black@140", p, p) for n, p in P_CHANGE.items()])
    out = tmp_path / "out"
    assert (
        main(["bias", str(annotations), "--out", str(out), "--audit", str(run), "--no-figures"])
        == 0
    )
    stats = json.loads((out / "bias.json").read_text())
    assert "black@140" in stats["invariance"]["by_size"]
    assert "black@140" in capsys.readouterr().out
    assert (
        main(["bias", str(annotations), "--out", str(out), "--audit", str(tmp_path / "missing")])
        == 2
    )
    assert "metrics.parquet" in capsys.readouterr().err
    other = write_run(tmp_path / "other", [("zzz.png", "crop", 0.1, 0.1)])
    assert (
        main(["bias", str(annotations), "--out", str(tmp_path / "o3"), "--audit", str(other)]) == 2
    )
    assert not (tmp_path / "o3" / "boxes.parquet").exists()
    assert "no image of the run" in capsys.readouterr().err


def test_stratified_bootstrap_agrees_with_the_plain_one_on_a_bin():
    from jaggy.bias._invariance import binned, cell_resamples
    from jaggy.metrics import bootstrap_mean_ci

    rng = np.random.default_rng(3)
    values = rng.random(4000)
    values[::13] = np.nan  # undefined for some images: left out, as in the summary
    cells = rng.integers(0, 36, 4000)
    size_bin = binned(cell_resamples(values, cells, 36, seed=0), np.arange(36) // 6, 6)[2]
    mine = values[(cells // 6 == 2) & np.isfinite(values)]
    value, (lo, hi) = bootstrap_mean_ci(mine, seed=0)
    assert size_bin["n"] == mine.size
    assert size_bin["value"] == pytest.approx(value)
    assert size_bin["ci95"] == pytest.approx([lo, hi], abs=0.01)
