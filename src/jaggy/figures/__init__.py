"""Figures in the study's style, all drawn by matplotlib: PNG files of P(c*) versus shift, and
inline SVG (text kept as text, same bytes for the same input) for the HTML report.

Figures take arrays and strings; reading result files is the caller's job (`jaggy.results`).
"""

from ._shift_curves import ShiftCurve, plot_shift_curves

__all__ = ["ShiftCurve", "plot_shift_curves"]
