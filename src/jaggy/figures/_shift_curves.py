"""P(c*) versus shift for one image (the study's Figure 1 style) as a PNG, drawn with matplotlib.

c* (the reference class) belongs to a protocol sequence, not to the image: it is the label when
known, else the top-1 class of the sequence's first view, which can differ between protocols.
Each curve's label therefore names its own c* (the caller writes it, see `class_label`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._palette import mpl_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def class_label(index: int, class_names: Sequence[str] | None, short: bool = False) -> str:
    """'name (index)' when a name is known, else 'class index'. `short` keeps the first of
    comma-separated synonyms (ImageNet names such as 'tabby, tabby cat')."""
    if class_names and 0 <= index < len(class_names):
        name = class_names[index].split(",")[0] if short else class_names[index]
        return f"{name} ({index})"
    return f"class {index}"


@dataclass(frozen=True)
class ShiftCurve:
    """One protocol sequence of one image: P(c*) at each view.

    label: the legend text (e.g. 'crop · c* = tabby (281)'). views: view indices k (1 px per
    step along the path; for `scale`, 1 px of size growth per step). p_ref: P(c*) per view.
    """

    label: str
    views: Sequence[int]
    p_ref: Sequence[float]


# Fixed layout in px at 100 dpi, where matplotlib's constrained layout and tight crop (0.1 in
# margin) put every part for these fixed fonts (the same picture at a third of the cost):
WIDTH_PX = 731.6
LEGEND_BOTTOM_PX = 10.0  # the legend's lower edge
LEGEND_ROW_PX = (18.1, 15.2)  # height of its first row, and of each further row
AXES_LEFT_PX, AXES_RIGHT_PX = 61.6, 721.6
AXES_ABOVE_LEGEND_PX = 51.1  # x tick labels and x label
AXES_TOP_MARGIN_PX = 29.3  # title


def plot_shift_curves(curves: Sequence[ShiftCurve], title: str) -> Figure:
    """One image's curves, one line per protocol sequence, on a 0..1 axis.

    Args:
        curves: the sequences, in legend order.
        title: the figure's title (the image's id).

    Returns:
        The matplotlib Figure (not attached to pyplot: nothing to close), 731 px wide at 100
        dpi, its legend in two columns below the axes.
    """
    import matplotlib  # here, not at import: importing jaggy.figures stays quick

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    legend_rows = max(1, (len(curves) + 1) // 2)
    height = 360.0 + 20 * ((len(curves) + 1) // 2 - 1) + 10.9 if curves else 370.9
    fig = Figure(figsize=(WIDTH_PX / 100, height / 100), dpi=100)
    legend_top = LEGEND_BOTTOM_PX + LEGEND_ROW_PX[0] + LEGEND_ROW_PX[1] * (legend_rows - 1)
    bottom = legend_top + AXES_ABOVE_LEGEND_PX
    top = height - AXES_TOP_MARGIN_PX
    ax = fig.add_axes(
        (
            AXES_LEFT_PX / WIDTH_PX,
            bottom / height,
            (AXES_RIGHT_PX - AXES_LEFT_PX) / WIDTH_PX,
            (top - bottom) / height,
        )
    )
    for i, curve in enumerate(curves):
        ax.plot(
            list(curve.views),
            list(curve.p_ref),
            markersize=3.5,
            linewidth=1.4,
            label=curve.label,
            **mpl_style(i),
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("view k (1 px per step; scale: +1 px of size per step)")
    ax.set_ylabel("P(c*)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(
        fontsize=7,
        ncol=2,
        loc="lower center",
        bbox_to_anchor=(0.5, LEGEND_BOTTOM_PX / height),
        borderaxespad=0,
        frameon=False,
    )
    return fig


def shift_curves_png(curves: Sequence[ShiftCurve], title: str) -> bytes:
    """`plot_shift_curves` as PNG bytes."""
    buffer = io.BytesIO()
    plot_shift_curves(curves, title).savefig(buffer, format="png")
    return buffer.getvalue()
