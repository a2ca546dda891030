"""Figures in the study's style, all drawn by matplotlib: PNG files of P(c*) versus shift, and
inline SVG (text kept as text, same bytes for the same input) for the HTML report.

Figures take arrays and strings; reading result files is the caller's job (`jaggy.results`).
"""

from ._charts import Series, line_chart
from ._palette import CORRECT, PALETTE, WALL_COLOURS, WRONG, mpl_style
from ._sequence import correctness_colours, image_data_uri, views_and_curve_svg
from ._shift_curves import ShiftCurve, class_label, plot_shift_curves, shift_curves_png
from ._svg_export import figure_svg, new_figure, svg_style
from ._wall import wall_colours, wall_svg

__all__ = [
    "CORRECT",
    "PALETTE",
    "WALL_COLOURS",
    "WRONG",
    "Series",
    "ShiftCurve",
    "class_label",
    "correctness_colours",
    "figure_svg",
    "image_data_uri",
    "line_chart",
    "mpl_style",
    "new_figure",
    "plot_shift_curves",
    "shift_curves_png",
    "svg_style",
    "views_and_curve_svg",
    "wall_colours",
    "wall_svg",
]
