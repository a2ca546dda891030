"""Figures in the study's style: matplotlib PNGs of P(c*) versus shift, and small
dependency-free SVG charts (lines with CI whiskers, the image x shift wall) for HTML reports."""

from ._palette import CORRECT, PALETTE, WALL_COLOURS, WRONG, mpl_style, series_style
from ._shift_curves import class_label, plot_shift_curves, write_shift_curve_pngs
from ._svg import (
    Series,
    correctness_colours,
    line_chart,
    nice_ticks,
    png_data_uri,
    views_and_curve_svg,
    wall_image,
    wall_svg,
)

__all__ = [
    "CORRECT",
    "PALETTE",
    "WALL_COLOURS",
    "WRONG",
    "Series",
    "class_label",
    "correctness_colours",
    "line_chart",
    "mpl_style",
    "nice_ticks",
    "plot_shift_curves",
    "png_data_uri",
    "series_style",
    "views_and_curve_svg",
    "wall_image",
    "wall_svg",
    "write_shift_curve_pngs",
]
