"""Figures in the study's style, drawn with matplotlib (Agg, no display needed)."""

from ._shift_curves import plot_shift_curves, write_shift_curve_pngs

__all__ = ["plot_shift_curves", "write_shift_curve_pngs"]
