"""Figures: SVG charts (well-formed, escaped, faithful to the data), the wall raster, the
colour cycle, and the matplotlib shift-curve PNGs with one c* per protocol sequence."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from jaggy.figures import (
    PALETTE,
    WALL_COLOURS,
    Series,
    line_chart,
    mpl_style,
    nice_ticks,
    plot_shift_curves,
    series_style,
    views_and_curve_svg,
    wall_image,
    wall_svg,
    write_shift_curve_pngs,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on malformed markup


def test_line_chart_is_well_formed_and_escapes_text():
    svg = line_chart(
        [Series("<b>a&b</b>", [0, 1, 2], [0.1, 0.5, 0.2])],
        title="t <script>",
        x_label="x'\"",
        y_label="P(c*)",
    )
    root = parse(svg)
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "<b>a&b</b>" in texts  # decoded by the XML parser: it was escaped in the source
    assert "t <script>" in texts
    assert "<script>" not in svg and "<b>" not in svg


def test_line_chart_points_follow_the_data():
    svg = line_chart([Series("s", [0, 1, 2, 3], [0.0, 1.0, math.nan, 0.5])], y_range=(0, 1))
    root = parse(svg)
    lines = root.findall(f".//{SVG}polyline")
    # the NaN splits the line: [0, 1] is drawn, [3] alone is only a marker
    assert len(lines) == 1
    points = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    assert len(points) == 2
    assert points[0][1] > points[1][1]  # y = 0 is lower on the page than y = 1
    assert len(root.findall(f".//{SVG}circle")) == 3


def test_whiskers_drawn_for_intervals():
    svg = line_chart([Series("s", [0, 1], [0.2, 0.4], lower=[0.1, 0.3], upper=[0.3, 0.5])])
    assert len(re.findall(r"<path d=\"M", svg)) == 2


@pytest.mark.parametrize("lo,hi", [(0, 1), (0.013, 0.07), (-3, 250), (5, 5)])
def test_nice_ticks_cover_the_range_with_round_steps(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 12
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5))
    assert ticks[0] >= lo - 1e-9 and ticks[0] - steps[0] < lo


def test_series_styles_are_distinct():
    styles = [series_style(i) for i in range(80)]
    assert len(set(styles)) == 80
    assert len(set(PALETTE)) == len(PALETTE) >= 20
    mpl = [tuple(map(str, mpl_style(i).values())) for i in range(40)]
    assert len(set(mpl)) == 40


def test_wall_image_colours_every_cell():
    states = np.array([[2, 1], [0, -1]])
    image = wall_image(states, 3, 2)
    assert image.size == (6, 4)
    pixels = np.asarray(image)
    assert tuple(pixels[0, 0]) == WALL_COLOURS[2]
    assert tuple(pixels[0, 3]) == WALL_COLOURS[1]
    assert tuple(pixels[2, 0]) == WALL_COLOURS[0]
    assert tuple(pixels[3, 5]) == WALL_COLOURS[-1]


def test_wall_svg_embeds_the_raster_and_escapes_labels():
    svg = wall_svg(np.ones((3, 4), dtype=int) * 2, ["<a>", "b", "c"], ["0", "1", "2", "3"])
    root = parse(svg)
    image = root.find(f".//{SVG}image")
    assert image.get("href").startswith("data:image/png;base64,")
    assert any("<a>" in "".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    assert "<a>" not in svg


def test_views_and_curve_svg_aligns_views_and_points():
    svg = views_and_curve_svg(
        [(0, None, "v0 <x>"), (3, None, "v3")],
        [0.9, 0.2, 0.8, 0.7],
        [True, False, True, True],
        ["0", "1", "2", "3"],
    )
    root = parse(svg)
    circles = root.findall(f".//{SVG}circle")
    rects = root.findall(f".//{SVG}rect")
    assert len(circles) == 4 and len(rects) == 2
    # the first and last points sit under the centres of the first and last view frames
    frame = float(rects[0].get("width")) + 3
    for rect, circle in ((rects[0], circles[0]), (rects[1], circles[3])):
        centre = float(rect.get("x")) - 1.5 + frame / 2
        assert float(circle.get("cx")) == pytest.approx(centre, abs=0.2)


def _predictions(path, rows):
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    pq.write_table(pa.table(columns), path)


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
                    "p_label": 0.1 * view,
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
            "p_label": 0.5,
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
            "p_label": 0.5,
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


def test_non_negative_data_keeps_the_axis_at_or_above_zero():
    for ys in ([0.0, 0.0, 0.0], [0.01, 0.2, 0.05]):
        root = parse(line_chart([Series("s", [0, 1, 2], ys)]))
        labels = [t.text for t in root.iter(f"{SVG}text") if t.text]
        assert not any(label.startswith("-") for label in labels)


def test_integer_x_values_get_integer_ticks():
    root = parse(line_chart([Series("s", [0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4])]))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert labels and all("." not in (label or "") for label in labels)


def test_curve_without_views_still_spreads_its_points():
    svg = views_and_curve_svg([], [0.1, 0.5, 0.9], [True, False, True], ["0", "1", "2"])
    xs = [float(c.get("cx")) for c in parse(svg).findall(f".//{SVG}circle")]
    assert len(set(xs)) == 3 and xs == sorted(xs)
