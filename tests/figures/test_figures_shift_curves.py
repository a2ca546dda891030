"""The matplotlib PNG of P(c*) versus shift: one c* per protocol sequence, streamed files."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from jaggy.figures import plot_shift_curves, write_shift_curve_pngs
from jaggy.results import versioned_metadata


def _predictions(path, rows):
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    pq.write_table(pa.table(columns).replace_schema_metadata(versioned_metadata()), path)


def test_shift_curves_name_each_protocols_reference_class(tmp_path):
    rows = []
    for key, ref in (("crop", 3), ("black@24", 7)):
        for view in range(4):
            rows.append(
                {
                    "image_index": 0,
                    "image_id": "a/b.png",
                    "protocol": key,
                    "view": view,
                    "p_ref": 0.1 * view,
                    "ref_class": ref,
                    "label": -1,
                }
            )
    names = [f"name{i}, synonym" for i in range(10)]
    fig = plot_shift_curves({k: [r[k] for r in rows] for k in rows[0]}, "a/b.png", names)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["crop · c* = name3 (3)", "black@24 · c* = name7 (7)"]
    _predictions(tmp_path / "p.parquet", rows)
    paths = write_shift_curve_pngs(tmp_path / "p.parquet", tmp_path / "figs", names)
    assert [p.name for p in paths] == ["00000-a_b.png.png"]
    with Image.open(paths[0]) as image:
        assert image.width > 300


def test_write_shift_curve_pngs_caps_images(tmp_path):
    rows = [
        {
            "image_index": i,
            "image_id": f"<img{i}>",
            "protocol": "crop",
            "view": v,
            "p_ref": 0.5,
            "ref_class": 1,
            "label": 1,
        }
        for i in range(3)
        for v in range(2)
    ]
    _predictions(tmp_path / "p.parquet", rows)
    paths = write_shift_curve_pngs(tmp_path / "p.parquet", tmp_path / "figs", max_images=2)
    assert [p.name for p in paths] == ["00000-img0.png", "00001-img1.png"]


def test_write_shift_curve_pngs_streams_across_batches(tmp_path, monkeypatch):
    import jaggy.figures._shift_curves as shift_curves

    drawn = []
    monkeypatch.setattr(shift_curves, "_BATCH_ROWS", 3)
    real_plot = shift_curves.plot_shift_curves

    def spy(rows, image_id, class_names=None):
        drawn.append((image_id, len(rows["view"])))
        return real_plot(rows, image_id, class_names)

    monkeypatch.setattr(shift_curves, "plot_shift_curves", spy)
    rows = [
        {
            "image_index": i,
            "image_id": f"im{i}",
            "protocol": key,
            "view": v,
            "p_ref": 0.5,
            "ref_class": 1,
            "label": -1,
        }
        for i in range(3)
        for key in ("crop", "scale")
        for v in range(2)
    ]
    _predictions(tmp_path / "p.parquet", rows)
    paths = shift_curves.write_shift_curve_pngs(tmp_path / "p.parquet", tmp_path / "figs")
    assert len(paths) == 3
    assert drawn == [("im0", 4), ("im1", 4), ("im2", 4)]  # every row of each image, once
