"""Figures in the study's style: PNG files of P(c*) versus shift (drawn by matplotlib), and
inline SVG for the HTML report (text kept as text, same bytes for the same input): the report's
charts, walls and views-and-curve figures are written directly in matplotlib's style, with its
tick locators, formatter and font metrics (`_svg_writer`); others go through `_svg_export`.

Figures take arrays and strings; reading result files is the caller's job (`jaggy.results`).
"""

from ._shift_curves import ShiftCurve, plot_shift_curves

__all__ = ["ShiftCurve", "plot_shift_curves"]
