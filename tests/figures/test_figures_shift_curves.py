"""The matplotlib PNG of P(c*) versus shift: one line per protocol sequence, drawn from arrays."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from jaggy.figures import ShiftCurve, _shift_curves, plot_shift_curves
from jaggy.figures._shift_curves import class_label, figure_pixels, shift_curves_png


def test_one_line_per_sequence_with_its_own_label():
    curves = [
        ShiftCurve("crop · c* = name3 (3)", [0, 1, 2, 3], [0.0, 0.1, 0.2, 0.3]),
        ShiftCurve("black@24 · c* = name7 (7) (label)", [0, 1, 2], [0.5, 0.4, 0.9]),
    ]
    fig = plot_shift_curves(curves, "a/b.png")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [c.label for c in curves]
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[1].get_ydata(), [0.5, 0.4, 0.9])
    assert fig.axes[0].get_title() == "a/b.png"


def test_png_bytes():
    png = shift_curves_png([ShiftCurve("crop", [0, 1], [0.2, 0.8])], "<img0>")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.width > 300


def savefig_pixels(fig) -> np.ndarray:
    """What matplotlib's own savefig draws (its Agg canvas), RGBA."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())


def curve_sets() -> list[tuple[list[ShiftCurve], str]]:
    rng = np.random.default_rng(5)

    def curves(n: int, views: int, first: int = 0) -> list[ShiftCurve]:
        return [
            ShiftCurve(
                f"p{i} · c* = name{i} ({i})",
                list(range(first, first + views)),
                rng.random(views).tolist(),
            )
            for i in range(n)
        ]

    with_nan = curves(3, 10)
    with_nan[1] = ShiftCurve("nan", list(range(10)), [0.5, float("nan")] + [0.2] * 8)
    return [
        (curves(12, 10), "first"),
        (curves(12, 10), "same frame, other curves and title"),  # its frame is copied
        (curves(3, 10), "fewer legend rows: another height"),
        (curves(12, 7, first=3), "other x limits"),
        (with_nan, "a gap"),
        (curves(12, 10), "the first frame again"),
    ]


def test_pixels_are_those_of_savefig_figure_after_figure(monkeypatch):
    """Frames drawn once and copied under later figures give matplotlib's own pixels, for
    equal and different sizes and limits."""
    monkeypatch.setattr(_shift_curves, "_FRAMES", {})
    for curves, title in curve_sets():
        fast = figure_pixels(plot_shift_curves(curves, title))
        assert np.array_equal(fast, savefig_pixels(plot_shift_curves(curves, title))), title
    assert 3 <= len(_shift_curves._FRAMES) < len(curve_sets())  # equal frames were shared


def test_png_holds_savefig_pixels():
    curves, title = curve_sets()[0]
    with Image.open(io.BytesIO(shift_curves_png(curves, title))) as image:
        decoded = np.asarray(image.convert("RGBA"))
        assert image.info["dpi"] == pytest.approx((100, 100), abs=0.01)
    assert np.array_equal(decoded, savefig_pixels(plot_shift_curves(curves, title)))


def test_class_label():
    names = ["tabby, tabby cat", "dog"]
    assert class_label(0, names, short=True) == "tabby (0)"
    assert class_label(0, names) == "tabby, tabby cat (0)"
    assert class_label(5, names) == "class 5"
    assert class_label(1, None) == "class 1"
