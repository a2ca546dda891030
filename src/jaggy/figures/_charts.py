"""Line charts with interval whiskers and hover titles, as inline SVG.

The chart is matplotlib's (the report's style of `_svg_export.STYLE`: ticks and their labels
from matplotlib's locators and formatter, its font metrics, its marker sizes and dash
patterns), laid out in fixed px as matplotlib's constrained layout places it, and written
directly (`_svg_writer`): a report draws a dozen or more charts, and matplotlib's layout engine,
renderer and SVG parsing took about 0.3 s each for what is a few dozen elements.

Layout, top to bottom: title, plot block (y axis labelled on the left), x tick labels and
label, then the legend in rows below; every gap is the one matplotlib's style gives (2 px
figure padding, 3.5 px ticks and tick padding, 4 px label padding, 6 px title padding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from ._deferred import deferrable
from ._palette import mpl_style
from ._svg_writer import (
    element,
    num,
    segment,
    svg_document,
    text_at,
    text_content,
    text_width,
    titled,
)

PAD = 2.0  # figure padding (constrained layout's w_pad and h_pad)
TICK = 3.5  # tick length, and the gap between a tick and its label
TICK_FONT, LABEL_FONT, TITLE_FONT = 9.0, 10.0, 11.0
ASCENT, DESCENT = 0.76, 0.24  # of a line of text, per px of font size (matplotlib's "lp")
LEGEND_PITCH = 13.5  # px between legend rows (9 px text + 0.5 em spacing)
TICK_COLOUR, AXIS_COLOUR, GRID_COLOUR = "#555555", "#999999", "#e3e5ea"


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


def _dasharray(linestyle, width: float) -> str | None:
    """SVG dash array of a matplotlib line style, scaled by the line width as matplotlib
    does; None for a solid line."""
    if linestyle in ("-", "solid", None):
        return None
    _, dashes = linestyle
    return ",".join(num(d * width) for d in dashes)


def _line_style(colour: str, width: float, dashes: str | None) -> str:
    if dashes is None:  # solid lines end square, dashed ones butt (matplotlib's cap styles)
        return f"fill:none;stroke:{colour};stroke-width:{num(width)};stroke-linecap:square"
    return f"fill:none;stroke-dasharray:{dashes};stroke-dashoffset:0;stroke:{colour};" + (
        f"stroke-width:{num(width)}"
    )


def _nonsingular(lo: float, hi: float) -> tuple[float, float]:
    """matplotlib's widening of an empty range (5% of the value, or +-0.05 around 0)."""
    if hi - lo > 1e-12 * max(abs(lo), abs(hi), 1e-300):
        return lo, hi
    if lo == 0 and hi == 0:
        return -0.05, 0.05
    return lo - 0.05 * abs(lo), hi + 0.05 * abs(hi)


def _data_limits(values: list[float]) -> tuple[float, float]:
    """Auto limits: the data's range with matplotlib's 5% margins (0..1 without data)."""
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    margin = (hi - lo) * 0.05
    return _nonsingular(lo - margin, hi + margin)


def _ticks(lo: float, hi: float, length: float, per_tick: float, integer: bool = False):
    """matplotlib's default ticks of an axis `length` px long (at most 9, about one per
    `per_tick` px; integers only when asked) and their labels from its ScalarFormatter."""
    if integer:
        locator = MaxNLocator(nbins=8, integer=True)
    else:
        locator = MaxNLocator(
            nbins=max(1, min(9, int(length // per_tick))), steps=[1, 2, 2.5, 5, 10]
        )
    locs = locator.tick_values(lo, hi)
    slack = (hi - lo) * 1e-10
    locs = [float(v) for v in locs if lo - slack <= v <= hi + slack]
    return locs, _labels(locs, lo, hi)


def _labels(locs: list[float], lo: float, hi: float) -> list[str]:
    formatter = ScalarFormatter()
    formatter.create_dummy_axis()
    formatter.axis.set_view_interval(lo, hi)
    formatter.axis.set_data_interval(lo, hi)
    formatter.set_locs(locs)
    labels = [formatter(v) for v in locs]
    offset = formatter.get_offset()
    if offset and labels:  # rare here (values such as 1000.1 .. 1000.5): say it on the last
        labels[-1] = f"{labels[-1]} ({offset})"
    return labels


def _legend_layout(labels: list[str], columns: int) -> list[list[int]]:
    """Series indices per legend column: matplotlib fills columns first, in nearly equal
    parts (numpy's array_split)."""
    return [list(part) for part in np.array_split(np.arange(len(labels)), columns) if len(part)]


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
    """A line chart as inline SVG markup (class "chart"; every string XML-escaped).

    Args:
        series: the lines, drawn in order; colours and dashes follow the shared palette.
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
    total_height = height + 15 * legend_rows

    # What each series draws, in data units.
    drawn = []
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
        lower, upper = _floats(s.lower), _floats(s.upper)
        whisker = None
        if lower is not None and upper is not None:
            whisker = np.isfinite(x) & np.isfinite(lower) & np.isfinite(upper)
            if whisker.any():
                all_y += lower[whisker].tolist() + upper[whisker].tolist()
            else:
                whisker = None
        drawn.append((s, colour, linestyle, x, y, finite, lower, upper, whisker))

    # Limits, as line_chart asked matplotlib for them.
    if y_range is not None:
        lo, hi = y_range
        pad = (hi - lo) * 0.03
        y_lo, y_hi = lo - pad, hi + pad
    elif all_y:
        lo, hi = min(all_y), max(all_y)
        pad = (hi - lo) * 0.08 or 0.5
        y_lo, y_hi = (lo - pad if lo < 0 else max(0.0, lo - pad)), hi + pad
    else:
        y_lo, y_hi = _data_limits([])
    y_lo, y_hi = _nonsingular(y_lo, y_hi)
    if x_ticks:
        values = [float(v) for v, _ in x_ticks]
        lo, hi = min(values + all_x), max(values + all_x)
        margin = 0.5 if hi == lo else (hi - lo) * 0.08
        x_lo, x_hi = _nonsingular(lo - margin, hi + margin)
    else:
        x_lo, x_hi = _data_limits(all_x)

    # The plot block: its height is known first (title, x axis, legend), then its y ticks,
    # whose widest label sets the left edge, and with it the x ticks.
    top = PAD + (TITLE_FONT * ASCENT + 6 if title else 0.0)
    below = 2 * TICK + TICK_FONT + (4 + LABEL_FONT if x_label else 0.0)
    legend_height = (LEGEND_PITCH * legend_rows + 2.7 + 4) if legend_rows else 0.0
    bottom = total_height - PAD - legend_height - below
    y_locs, y_texts = _ticks(y_lo, y_hi, bottom - top, 2 * TICK_FONT)
    tick_width = max((text_width(t, TICK_FONT) for t in y_texts), default=0.0)
    left = PAD + (LABEL_FONT + 4 if y_label else 0.0) + tick_width + 2 * TICK
    right = width - PAD
    if x_ticks:
        x_locs = [float(v) for v, _ in x_ticks]
        x_texts = [str(label) for _, label in x_ticks]
    else:
        integer = bool(all_x) and all(float(v).is_integer() for v in all_x)
        x_locs, x_texts = _ticks(x_lo, x_hi, right - left, 3 * TICK_FONT, integer)
    if x_locs:  # the last x label must fit: matplotlib's layout narrows the plot for it
        end = left + (right - left) * (x_locs[-1] - x_lo) / (x_hi - x_lo)
        right -= max(0.0, end + text_width(x_texts[-1], TICK_FONT) / 2 - (width - PAD))

    def px(v: float) -> float:
        return left + (right - left) * (v - x_lo) / (x_hi - x_lo)

    def py(v: float) -> float:
        return bottom - (bottom - top) * (v - y_lo) / (y_hi - y_lo)

    caps: list[str] = []
    axis: list[str] = []
    lines: list[str] = []
    points: list[str] = []
    for s, colour, linestyle, x, y, finite, lower, upper, whisker in drawn:
        if whisker is not None:  # interval whiskers: a segment and two caps per point
            for k in np.nonzero(whisker)[0]:
                xk = px(x[k])
                for end in (lower[k], upper[k]):
                    yk = num(py(end))
                    caps.append(
                        segment(
                            num(xk - 3.16),
                            yk,
                            num(xk + 3.16),
                            yk,
                            f"fill:none;stroke:{colour};stroke-width:1.2",
                        )
                    )
        if s.width > 0 and finite.sum() >= 2:
            segments, run = [], []
            for k in range(len(x)):
                if finite[k]:
                    run.append(f"{num(px(x[k]))} {num(py(y[k]))}")
                    continue
                if len(run) >= 2:
                    segments.append("M " + " L ".join(run))
                run = []
            if len(run) >= 2:
                segments.append("M " + " L ".join(run))
            if segments:
                dashes = _dasharray(linestyle, s.width)
                path = element(
                    "path", d=" ".join(segments), style=_line_style(colour, s.width, dashes)
                )
                lines.append(titled(s.label, path))
        if whisker is not None:
            for k in np.nonzero(whisker)[0]:
                xk = num(px(x[k]))
                lines.append(
                    segment(
                        xk,
                        num(py(lower[k])),
                        xk,
                        num(py(upper[k])),
                        f"fill:none;stroke:{colour};stroke-width:1.2",
                    )
                )
        if s.markers and finite.any():
            for k in np.nonzero(finite)[0]:
                fill = s.point_colours[k] if s.point_colours is not None else colour
                mark = element(
                    "circle",
                    cx=num(px(x[k])),
                    cy=num(py(y[k])),
                    r=num(math.sqrt(26) / 2),  # matplotlib's scatter size 26 px^2
                    style=f"fill:{fill};stroke:{colour}",
                )
                points.append(
                    titled(s.point_titles[k] if s.point_titles is not None else None, mark)
                )

    for v, label in zip(x_locs, x_texts, strict=True):  # x ticks, below the plot
        xv = num(px(v))
        axis.append(
            segment(
                xv, num(bottom), xv, num(bottom + TICK), f"stroke:{TICK_COLOUR};stroke-width:0.8"
            )
        )
        axis.append(
            text_at(
                label,
                xv,
                num(bottom + 2 * TICK + TICK_FONT * ASCENT),
                f"font-size:9px;text-anchor:middle;fill:{TICK_COLOUR}",
            )
        )
    if x_label:
        axis.append(
            text_at(
                x_label,
                num((left + right) / 2),
                num(bottom + 2 * TICK + TICK_FONT + 4 + LABEL_FONT * ASCENT),
                "font-size:10px;text-anchor:middle",
            )
        )
    for v, label in zip(y_locs, y_texts, strict=True):  # y grid, ticks and labels
        yv = num(py(v))
        axis.append(
            segment(
                num(left),
                yv,
                num(right),
                yv,
                f"fill:none;stroke:{GRID_COLOUR};stroke-width:0.8;stroke-linecap:square",
            )
        )
        axis.append(
            segment(num(left), yv, num(left - TICK), yv, f"stroke:{TICK_COLOUR};stroke-width:0.8")
        )
        axis.append(
            text_at(
                label,
                num(left - 2 * TICK),
                num(py(v) + TICK_FONT * ASCENT / 2),
                f"font-size:9px;text-anchor:end;fill:{TICK_COLOUR}",
            )
        )
    if y_label:
        lx = num(left - 2 * TICK - tick_width - 4 - LABEL_FONT * DESCENT)
        ly = num((top + bottom) / 2)
        axis.append(
            element(
                "text",
                text_content(y_label),
                style="font-size:10px;text-anchor:middle",
                x=lx,
                y=ly,
                transform=f"rotate(-90 {lx} {ly})",
            )
        )
    spine = f"fill:none;stroke:{AXIS_COLOUR};stroke-width:0.8;stroke-linejoin:miter;stroke-linecap:square"
    spines = [
        element("path", d=f"M {num(left)} {num(bottom)} L {num(left)} {num(top)}", style=spine),
        element("path", d=f"M {num(left)} {num(bottom)} L {num(right)} {num(bottom)}", style=spine),
    ]
    decorations: list[str] = []
    if title:
        decorations.append(
            text_at(
                title,
                num(left),
                num(PAD + TITLE_FONT * ASCENT),
                "font-weight:700;font-size:11px;text-anchor:start",
            )
        )
    if show_legend:
        x0 = 8.1
        for column in _legend_layout(labels, columns):
            widest = 0.0
            for row, i in enumerate(column):
                s, colour, linestyle = drawn[i][0], drawn[i][1], drawn[i][2]
                baseline = total_height - 10.26 - LEGEND_PITCH * (legend_rows - 1 - row)
                yh = num(baseline - 3.15)
                if s.width > 0:
                    dashes = _dasharray(linestyle, s.width)
                    decorations.append(
                        segment(
                            num(x0), yh, num(x0 + 16.2), yh, _line_style(colour, s.width, dashes)
                        )
                    )
                if s.markers and (s.width == 0 or s.lower is not None):
                    decorations.append(
                        element(
                            "circle",
                            cx=num(x0 + 8.1),
                            cy=yh,
                            r="2.5",
                            style=f"fill:{colour};stroke:{colour}",
                        )
                    )
                decorations.append(
                    text_at(
                        s.label, num(x0 + 23.4), num(baseline), "font-size:9px;text-anchor:start"
                    )
                )
                widest = max(widest, text_width(s.label, TICK_FONT))
            x0 += 23.4 + widest + 18  # handle, text, column spacing
    body = caps + axis + lines + spines + points + decorations
    return svg_document(
        width, total_height, body, css_class="chart", description=description or title or ""
    )
