"""P(c*) versus shift for one image (the study's Figure 1 style) as a PNG, drawn with matplotlib.

c* (the reference class) belongs to a protocol sequence, not to the image: it is the label when
known, else the top-1 class of the sequence's first view, which can differ between protocols.
Each curve's label therefore names its own c* (the caller writes it, see `class_label`).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np

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
    # At the top of the axes, where matplotlib's search would put it (no ticks above them),
    # without the search's measuring of every tick label.
    ax.set_title(title, fontsize=10, y=1.0)
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


def load_matplotlib() -> None:
    """Import what drawing the PNGs needs (matplotlib, its Agg canvas, the font list), so that
    processes forked afterwards inherit it instead of each importing it again."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib.backends import backend_agg  # noqa: F401

    font_manager.findfont(font_manager.FontProperties())  # the default: the figures' font


def shift_curves_png(curves: Sequence[ShiftCurve], title: str) -> bytes:
    """`plot_shift_curves` as PNG bytes: the pixels of matplotlib's savefig (`figure_pixels`),
    saved as RGB where the figure is opaque, at zlib level 1 (a third of the time of the
    default level, for a file of about the same size)."""
    import matplotlib
    from PIL import Image, PngImagePlugin

    fig = plot_shift_curves(curves, title)
    rgba = figure_pixels(fig)
    pixels = rgba[..., :3] if rgba[..., 3].min() == 255 else rgba
    info = PngImagePlugin.PngInfo()  # what matplotlib writes
    info.add_text(
        "Software", f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/"
    )
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(
        buffer, "PNG", compress_level=1, pnginfo=info, dpi=(fig.dpi, fig.dpi)
    )
    return buffer.getvalue()


# The frame of a figure (its background, the axes' ticks, grid and labels) is the same for
# every figure of the same size and limits, and costs about half of its drawing: it is drawn
# once per process and copied under each further figure; see `figure_pixels`.
_FRAMES: dict[tuple, tuple[dict, object]] = {}  # key -> (rcParams then, pixels of the frame)
_RENDERERS: dict[tuple, object] = {}  # (width, height, dpi) -> one Agg renderer, reused
_MAX_FRAMES = 8  # a run's figures share a few sizes and limits; each frame is ~1.4 MB
_DRAWING = threading.Lock()  # one figure at a time on the shared renderers


def figure_pixels(fig: Figure) -> np.ndarray:
    """The RGBA pixels [H, W, 4] that matplotlib's Agg canvas draws for a one-axes figure of
    `plot_shift_curves`. Drawing is matplotlib's own, artist by artist in its order (figure
    and axes backgrounds, then the axes' x and y axis, then the lines, spines and title, then
    the legend), so the pixels are the same; where the frame (up to the axes' axis) was drawn
    already for an equal figure, it is copied instead of drawn, and a reused renderer keeps
    matplotlib's text measurements cached between figures."""
    from matplotlib import rcParams
    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg

    with _DRAWING:
        return _figure_pixels(fig, FigureCanvasAgg(fig), rcParams, RendererAgg)


def _figure_pixels(fig: Figure, canvas, rcParams, RendererAgg) -> np.ndarray:
    size = (*canvas.get_width_height(physical=True), fig.dpi)
    if size not in _RENDERERS:
        _RENDERERS[size] = RendererAgg(*size)
    renderer = _RENDERERS[size]
    (ax,) = fig.axes
    ax.apply_aspect()  # as Figure.draw does first
    # Axes.draw's order: its patch, then its other children by zorder (a stable sort); the
    # figure's: its patch, then its children by zorder.
    children = sorted((a for a in ax.get_children() if a is not ax.patch), key=attrgetter("zorder"))
    in_figure = sorted(
        (a for a in fig.get_children() if a is not fig.patch), key=attrgetter("zorder")
    )
    if (
        children[:2] != [ax.xaxis, ax.yaxis]
        or in_figure[:1] != [ax]
        or not (ax.axison and ax.get_frame_on())
        or ax.images
        or fig.images
    ):
        canvas.draw()  # not the layout of plot_shift_curves: drawn as savefig draws
        return np.array(canvas.buffer_rgba())
    on_frame = [a for a in children[2:] if a.get_visible()]
    above = [a for a in in_figure[1:] if a.get_visible()]
    key = (
        size,
        tuple(ax.get_position().bounds),
        ax.get_xlim(),  # after autoscaling, as Axes.draw sees them
        ax.get_ylim(),
        ax.get_xlabel(),
        ax.get_ylabel(),
    )
    rc = dict(rcParams)
    if key not in _FRAMES or _FRAMES[key][0] != rc:
        for artist in on_frame + above:
            artist.set_visible(False)
        try:
            renderer.clear()
            fig.draw(renderer)
            if len(_FRAMES) >= _MAX_FRAMES:
                del _FRAMES[next(iter(_FRAMES))]
            _FRAMES[key] = (rc, renderer.copy_from_bbox(fig.bbox))
        finally:
            for artist in on_frame + above:
                artist.set_visible(True)
    renderer.restore_region(_FRAMES[key][1])
    for artist in on_frame + above:
        artist.draw(renderer)
    return np.array(renderer.buffer_rgba())
