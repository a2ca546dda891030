"""P(c*) versus shift for one image (the study's Figure 1 style) as a PNG, drawn with matplotlib.

c* (the reference class) belongs to a protocol sequence, not to the image: it is the label when
known, else the top-1 class of the sequence's first view, which can differ between protocols.
Each curve's label therefore names its own c* (the caller writes it, see `class_label`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from ._palette import mpl_style  # noqa: E402


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


def plot_shift_curves(curves: Sequence[ShiftCurve], title: str) -> Figure:
    """One image's curves, one line per protocol sequence, on a 0..1 axis.

    Args:
        curves: the sequences, in legend order.
        title: the figure's title (the image's id).

    Returns:
        The matplotlib Figure (not attached to pyplot: nothing to close).
    """
    legend_rows = (len(curves) + 1) // 2
    fig = Figure(figsize=(7.2, 3.4 + 0.2 * legend_rows), dpi=100, layout="constrained")
    ax = fig.add_subplot()
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
    fig.legend(fontsize=7, ncol=2, loc="outside lower center", frameon=False)
    return fig


def shift_curves_png(curves: Sequence[ShiftCurve], title: str) -> bytes:
    """`plot_shift_curves` as PNG bytes (cropped to what it draws)."""
    buffer = io.BytesIO()
    plot_shift_curves(curves, title).savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
