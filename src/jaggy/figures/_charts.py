"""Line charts with interval whiskers and hover titles, drawn by matplotlib as inline SVG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, MaxNLocator

from ._deferred import deferrable
from ._palette import mpl_style
from ._svg_export import figure_svg, new_figure, svg_style


@dataclass
class Series:
    """One line of a chart.

    x, y: coordinates in data units; a NaN y leaves a gap. lower, upper: optional interval
    (e.g. a 95% CI) drawn as a whisker at each point. colour: default from the shared palette.
    dash: a matplotlib dash pattern, e.g. (5, 3). width: line width in px (0: points only).
    point_colours: optional colour per point (e.g. green where the answer is right).
    point_titles: optional hover text per point.
    """

    label: str
    x: Sequence[float]
    y: Sequence[float]
    colour: str | None = None
    dash: tuple[float, ...] | None = None
    width: float = 1.6
    markers: bool = True
    lower: Sequence[float] | None = None
    upper: Sequence[float] | None = None
    point_colours: Sequence[str] | None = None
    point_titles: Sequence[str] | None = None


def _floats(values: Sequence[float] | None) -> np.ndarray | None:
    if values is None:
        return None
    return np.asarray([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _legend_columns(labels: list[str], width: float) -> int:
    longest = max((len(label) for label in labels), default=1)
    return max(1, min(len(labels), int(width // (longest * 6.2 + 34))))


@deferrable
def line_chart(
    series: Sequence[Series],
    *,
    width: int = 560,
    height: int = 300,
    x_label: str = "",
    y_label: str = "",
    y_range: tuple[float, float] | None = None,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    title: str | None = None,
    legend: bool = True,
    description: str | None = None,
) -> str:
    """A line chart as inline SVG markup (see `figure_svg`).

    Args:
        series: the lines, drawn in order; colours and markers follow the shared palette.
        width, height: size of the plot block in px (a legend adds rows below it).
        y_range: fixed (min, max) of the y axis; default: the data's range, kept at or above
            zero for non-negative data (probabilities, rates, errors).
        x_ticks: explicit (value, label) ticks, e.g. categories at 0, 1, 2; default: round
            values, integers only when every x is an integer.
        title: text above the plot. description: the SVG's accessible description.
    """
    labels = [s.label for s in series]
    show_legend = legend and bool(series)
    columns = _legend_columns(labels, width - 40) if show_legend else 1
    legend_rows = math.ceil(len(labels) / columns) if show_legend else 0
    with svg_style():
        figure = new_figure(width, height + 15 * legend_rows)
        figure.set_layout_engine("constrained", h_pad=2 / 72, w_pad=2 / 72)
        axes = figure.add_subplot()
        titles: dict[str, str | list[str]] = {}
        handles = []
        all_x: list[float] = []
        all_y: list[float] = []
        for i, s in enumerate(series):
            style = mpl_style(i)
            colour = s.colour or style["color"]
            linestyle = (0, s.dash) if s.dash else style["linestyle"]
            x, y = _floats(s.x), _floats(s.y)
            finite = np.isfinite(x) & np.isfinite(y)
            all_x += x[np.isfinite(x)].tolist()
            all_y += y[finite].tolist()
            if s.width > 0 and finite.sum() >= 2:
                (line,) = axes.plot(x, y, color=colour, linewidth=s.width, linestyle=linestyle)
                line.set_gid(f"s{i}")
                titles[f"s{i}"] = s.label
            lower, upper = _floats(s.lower), _floats(s.upper)
            if lower is not None and upper is not None:
                whisker = np.isfinite(x) & np.isfinite(lower) & np.isfinite(upper)
                if whisker.any():
                    axes.vlines(x[whisker], lower[whisker], upper[whisker], colors=colour, lw=1.2)
                    for end in (lower, upper):
                        axes.scatter(x[whisker], end[whisker], marker="_", s=40, c=colour, lw=1.2)
                    all_y += lower[whisker].tolist() + upper[whisker].tolist()
            if s.markers and finite.any():
                fill = (
                    [s.point_colours[k] for k in np.nonzero(finite)[0]]
                    if s.point_colours is not None
                    else colour
                )
                points = axes.scatter(
                    x[finite], y[finite], s=26, c=fill, edgecolors=colour, linewidths=1, zorder=3
                )
                if s.point_titles is not None:
                    points.set_gid(f"p{i}")
                    titles[f"p{i}"] = [s.point_titles[k] for k in np.nonzero(finite)[0]]
            dot = s.markers and (s.width == 0 or lower is not None)
            handles.append(
                Line2D(
                    [],
                    [],
                    color=colour,
                    linewidth=s.width,
                    linestyle=linestyle if s.width > 0 else "none",
                    marker="o" if dot else None,
                    markersize=5,
                )
            )
        if y_range is not None:
            lo, hi = y_range
            pad = (hi - lo) * 0.03
            axes.set_ylim(lo - pad, hi + pad)
        elif all_y:
            lo, hi = min(all_y), max(all_y)
            pad = (hi - lo) * 0.08 or 0.5
            axes.set_ylim(lo - pad if lo < 0 else max(0.0, lo - pad), hi + pad)
        if x_ticks:
            values = [float(v) for v, _ in x_ticks]
            axes.xaxis.set_major_locator(FixedLocator(values))
            axes.set_xticklabels([label for _, label in x_ticks])
            lo, hi = min(values + all_x), max(values + all_x)
            margin = 0.5 if hi == lo else (hi - lo) * 0.08
            axes.set_xlim(lo - margin, hi + margin)
        elif all_x and all(float(v).is_integer() for v in all_x):
            axes.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        axes.grid(axis="x", visible=False)
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        if title:
            axes.set_title(title, fontsize=11)
        if show_legend:
            figure.legend(handles, labels, loc="outside lower left", ncol=columns, handlelength=1.8)
        return figure_svg(
            figure, description=description or title or "", css_class="chart", titles=titles
        )
