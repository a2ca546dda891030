"""The report's figures (matplotlib SVG): well-formed, escaped, faithful to the data, hover
titles, text kept as text, the same bytes for the same input, ids unique per figure."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import hypothesis
import numpy as np
import pytest

from jaggy.figures._charts import Series, line_chart
from jaggy.figures._palette import PALETTE, WALL_COLOURS, mpl_style
from jaggy.figures._sequence import views_and_curve_svg
from jaggy.figures._svg_export import figure_svg, new_figure, svg_style
from jaggy.figures._wall import wall_colours, wall_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on malformed markup


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


POINT_MARKS = (f"{SVG}use", f"{SVG}circle")  # matplotlib's scatter, or written directly


def titled_marks(root: ET.Element) -> list[tuple[str, ET.Element]]:
    """(title, mark) of every group holding a title and one point mark."""
    out = []
    for group in root.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        marks = [c for c in group if c.tag in (*POINT_MARKS, f"{SVG}path")]
        if title is not None and len(marks) == 1 and marks[0].tag in POINT_MARKS:
            out.append((title.text, marks[0]))
    return out


def point_xy(mark: ET.Element) -> tuple[float, float]:
    """The centre of a point mark in the SVG's px (<use x y> or <circle cx cy>)."""
    if mark.tag == f"{SVG}circle":
        return float(mark.get("cx")), float(mark.get("cy"))
    return float(mark.get("x")), float(mark.get("y"))


def sample_chart() -> str:
    return line_chart(
        [
            Series(
                "<b>a&b</b>",
                [0, 1, 2, 3],
                [0.0, 1.0, math.nan, 0.5],
                point_titles=["p0", "p1 <i>", "p2", "p3"],
                point_colours=["#2b9348", "#d62728", "#000000", "#2b9348"],
            ),
            Series("mean", [0, 1, 2, 3], [0.2, 0.3, 0.3, 0.2], markers=False, dash=(5, 3)),
        ],
        title="t <script>",
        x_label="x'\"",
        y_label="P(c*)",
        y_range=(0, 1),
    )


def sample_sequence() -> str:
    rng = np.random.default_rng(0)
    thumbs = [(p, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), f"v{p} <x>") for p in (0, 3)]
    return views_and_curve_svg(
        thumbs,
        [0.9, 0.2, 0.8, 0.7],
        [True, False, True, True],
        ["0", "1", "2", "3"],
        point_titles=[f"point {k}" for k in range(4)],
    )


def sample_wall() -> str:
    states = np.array([[2, 1, 0], [0, 2, -1]])
    return wall_svg(
        states,
        ["<a>", "b"],
        ["0", "1", "2"],
        row_notes=["0.50", "0.25"],
        row_titles=["<a>: c* = 3", "b: c* = 4"],
    )


def test_line_chart_is_well_formed_and_keeps_text_as_escaped_text():
    svg = sample_chart()
    root = parse(svg)
    assert "<b>a&b</b>" in [t for g in root.iter(f"{SVG}title") for t in [g.text]]
    assert "t <script>" in texts(root)  # decoded by the XML parser: escaped in the source
    assert "<script>" not in svg and "<b>" not in svg
    assert "P(c*)" in texts(root)
    assert "font-family" not in svg  # the page's font draws the text
    assert root.find(f"{SVG}metadata") is None and "Date" not in svg
    assert "<style" not in svg  # matplotlib's global stylesheet would style the whole page


def test_every_point_has_its_hover_title_in_order():
    root = parse(sample_chart())
    marks = titled_marks(root)
    # the NaN point is not drawn: three titled points, in data order, left to right
    assert [t for t, _ in marks] == ["p0", "p1 <i>", "p3"]
    xs = [point_xy(m)[0] for _, m in marks]
    ys = [point_xy(m)[1] for _, m in marks]
    assert xs == sorted(xs)
    assert ys[0] > ys[1]  # y = 0 is lower on the page than y = 1
    fills = [re.search(r"fill:(#\w+)", m.get("style")).group(1) for _, m in marks]
    assert fills == ["#2b9348", "#d62728", "#2b9348"]


def test_whiskers_drawn_for_intervals():
    svg = line_chart([Series("s", [0, 1], [0.2, 0.4], lower=[0.1, 0.3], upper=[0.3, 0.5])])
    root = parse(svg)
    # one vertical segment per interval: from the lower to the upper bound
    segments = [
        p.get("d")
        for p in root.iter(f"{SVG}path")
        if re.fullmatch(r"M [\d.]+ [\d.]+ L [\d.]+ [\d.]+", p.get("d") or "")
    ]
    vertical = [d for d in segments if d.split()[1] == d.split()[4]]
    assert len(vertical) >= 2


@pytest.mark.parametrize("make", [sample_chart, sample_sequence, sample_wall])
def test_same_input_gives_the_same_bytes(make):
    assert make() == make()


def test_ids_are_unique_across_figures_and_references_resolve():
    figures = [
        sample_chart(),
        sample_sequence(),
        sample_wall(),
        line_chart([Series("s", [0, 1], [1, 2])]),
    ]
    page = "".join(figures)
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for target in re.findall(r'href="#([^"]+)"', page) + re.findall(r"url\(#([^)]+)\)", page):
        assert target in ids


def test_series_styles_are_distinct():
    assert len(set(PALETTE)) == len(PALETTE) >= 20
    mpl = [tuple(map(str, mpl_style(i).values())) for i in range(80)]
    assert len(set(mpl)) == 80


def test_wall_colours_every_cell():
    rgb = wall_colours(np.array([[2, 1], [0, -1]]))
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == WALL_COLOURS[2]
    assert tuple(rgb[0, 1]) == WALL_COLOURS[1]
    assert tuple(rgb[1, 0]) == WALL_COLOURS[0]
    assert tuple(rgb[1, 1]) == WALL_COLOURS[-1]


def test_wall_embeds_the_cells_and_titles_the_rows():
    svg = sample_wall()
    root = parse(svg)
    image = root.find(f".//{SVG}image")
    assert image.get("href").startswith("data:image/png;base64,")
    assert "pixelated" in image.get("style")  # cells stay crisp when scaled
    assert "<a>" in texts(root) and "<a>" not in svg
    assert "0.50" in texts(root) and "0.25" in texts(root)
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert titles == ["<a>: c* = 3", "b: c* = 4"]
    import base64
    import io

    from PIL import Image

    data = base64.b64decode(image.get("href").split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as cells:
        pixels = np.asarray(cells.convert("RGB"))
    assert pixels.shape[:2] == (2, 3)  # one pixel per cell, drawn without resampling
    assert tuple(pixels[0, 0]) == WALL_COLOURS[2] and tuple(pixels[1, 2]) == WALL_COLOURS[-1]


def _image_box(image: ET.Element) -> tuple[float, float]:
    """(left, width) of an <image> in the SVG's px: from matplotlib's transform, or from the
    x and width of an image written directly."""
    if image.get("transform") is None:
        return float(image.get("x", "0")), float(image.get("width"))
    a, _, _, _, e, _ = (float(v) for v in re.findall(r"[-\d.]+", image.get("transform")))
    return e, a * float(image.get("width"))


def test_views_sit_above_their_points_and_are_jpeg():
    root = parse(sample_sequence())
    images = list(root.iter(f"{SVG}image"))
    assert len(images) == 2
    assert all(i.get("href").startswith("data:image/jpeg;base64,") for i in images)
    points = {t: m for t, m in titled_marks(root)}
    assert sorted(points) == [f"point {k}" for k in range(4)]
    for image, k in zip(images, (0, 3), strict=True):
        left, width = _image_box(image)
        assert point_xy(points[f"point {k}"])[0] == pytest.approx(left + width / 2, abs=0.6)
    view_titles = [t.text for t in root.iter(f"{SVG}title") if t.text.startswith("v")]
    assert "v0 <x>" in view_titles and "v3 <x>" in view_titles


def test_curve_without_views_still_spreads_its_points():
    svg = views_and_curve_svg(
        [], [0.1, 0.5, 0.9], [True, False, True], ["0", "1", "2"], point_titles=["a", "b", "c"]
    )
    xs = [point_xy(m)[0] for _, m in titled_marks(parse(svg))]
    assert len(set(xs)) == 3 and xs == sorted(xs)


def test_non_negative_data_keeps_the_axis_at_or_above_zero():
    for ys in ([0.0, 0.0, 0.0], [0.01, 0.2, 0.05]):
        labels = texts(parse(line_chart([Series("s", [0, 1, 2], ys)])))
        assert not any(label.startswith(("-", "−")) for label in labels)


def test_integer_x_values_get_integer_ticks():
    root = parse(line_chart([Series("s", [0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4])], legend=False))
    labels = [
        "".join(t.itertext()) for t in root.iter(f"{SVG}text") if "middle" in (t.get("style") or "")
    ]
    numbers = [label for label in labels if re.fullmatch(r"[-−\d.]+", label)]
    assert numbers and all("." not in label for label in numbers)


def test_figure_svg_titles_and_errors():
    with svg_style():
        figure = new_figure(200, 100)
        axes = figure.add_subplot()
        (line,) = axes.plot([0, 1], [0, 1])
        line.set_gid("the-line")
        svg = figure_svg(figure, titles={"the-line": "a line"}, description="d <x>")
    root = parse(svg)
    assert root.get("width") == "200" and root.get("height") == "100"  # CSS px
    assert root.find(f"{SVG}desc").text == "d <x>"
    assert [t.text for t in root.iter(f"{SVG}title")] == ["a line"]
    with svg_style():
        figure = new_figure(200, 100)
        figure.add_subplot().scatter([0, 1], [0, 1]).set_gid("pts")
        with pytest.raises(ValueError, match="2 points drawn, 1 titles"):
            figure_svg(figure, titles={"pts": ["only one"]})


@hypothesis.given(hypothesis.strategies.text(alphabet="ab1.-# é&<>\"'\n\r\t", max_size=12))
def test_attribute_quotes_as_quoteattr(text):
    from xml.sax.saxutils import quoteattr

    from jaggy.figures._svg_writer import attribute

    assert attribute(text) == quoteattr(text)
