"""The matplotlib PNG of P(c*) versus shift: one line per protocol sequence, drawn from arrays."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from jaggy.figures import ShiftCurve, plot_shift_curves
from jaggy.figures._shift_curves import class_label, shift_curves_png


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


def test_class_label():
    names = ["tabby, tabby cat", "dog"]
    assert class_label(0, names, short=True) == "tabby (0)"
    assert class_label(0, names) == "tabby, tabby cat (0)"
    assert class_label(5, names) == "class 5"
    assert class_label(1, None) == "class 1"
