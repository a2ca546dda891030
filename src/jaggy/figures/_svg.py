"""Small, dependency-free SVG charts for self-contained HTML pages.

Every string that reaches the SVG (labels, titles, tooltips) is escaped here, so callers pass
raw text. Coordinates are SVG user units (CSS pixels at scale 1); numbers are rounded to 0.01
to keep files small.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
from PIL import Image

from ._palette import CORRECT, WALL_COLOURS, WRONG, series_style

FONT = 11  # px; the width of text is estimated as 0.6 em per character
_CHAR = 0.6 * FONT


@dataclass
class Series:
    """One line of a chart.

    x, y: coordinates in data units; a NaN y leaves a gap. lower, upper: optional interval
    (e.g. a 95% CI) drawn as a whisker at each point. point_colours: optional colour per point
    (e.g. green where the answer is right). point_titles: optional tooltip per point.
    """

    label: str
    x: Sequence[float]
    y: Sequence[float]
    colour: str | None = None
    dash: str | None = None
    width: float = 1.6
    markers: bool = True
    lower: Sequence[float] | None = None
    upper: Sequence[float] | None = None
    point_colours: Sequence[str] | None = None
    point_titles: Sequence[str] | None = None


def _fmt(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """About `target` round tick values covering [lo, hi] (steps of 1, 2 or 5 x 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(target, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_label(value: float) -> str:
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:g}"


def _legend_rows(labels: list[str], width: float) -> list[list[tuple[int, float]]]:
    """Flow legend items into rows that fit `width`; items are (series index, x offset)."""
    rows: list[list[tuple[int, float]]] = [[]]
    x = 0.0
    for i, label in enumerate(labels):
        item = 26 + len(label) * _CHAR + 14
        if rows[-1] and x + item > width:
            rows.append([])
            x = 0.0
        rows[-1].append((i, x))
        x += item
    return rows


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
    """An SVG line chart (with optional per-point whiskers) as a string.

    Args:
        series: the lines; their colours default to the shared palette in order.
        width, height: size of the plot block in px (the legend adds rows below).
        y_range: fixed (min, max) of the y axis; default: the data's range.
        x_ticks: explicit (value, label) ticks, e.g. categories at 0, 1, 2.
        title: text above the plot. description: the SVG's accessible description.
    """
    left, right, top = 48.0, 12.0, 22.0 if title else 10.0
    bottom = 36.0 if x_label else 22.0
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [float(v) for s in series for v in s.x if math.isfinite(float(v))]
    ys = [float(v) for s in series for v in s.y if math.isfinite(float(v))]
    for s in series:
        for bound in (s.lower, s.upper):
            if bound is not None:
                ys += [float(v) for v in bound if math.isfinite(float(v))]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_ticks:
        x_lo = min(x_lo, min(t for t, _ in x_ticks))
        x_hi = max(x_hi, max(t for t, _ in x_ticks))
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    if y_range is not None:
        y_lo, y_hi = y_range
    else:
        y_lo, y_hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
        pad = (y_hi - y_lo) * 0.08 or 0.5
        # non-negative data (probabilities, rates, errors) keeps its axis at zero or above
        y_lo, y_hi = (y_lo - pad if y_lo < 0 else max(0.0, y_lo - pad)), y_hi + pad
    pad_x = (x_hi - x_lo) * 0.03

    def px(x: float) -> float:
        return left + (x - x_lo + pad_x) / (x_hi - x_lo + 2 * pad_x) * plot_w

    def py(y: float) -> float:
        return top + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    labels = [s.label for s in series]
    rows = _legend_rows(labels, width - left) if legend and series else []
    total_h = height + 16 * len(rows) + (4 if rows else 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{total_h:.0f}" viewBox="0 0 {width} {total_h:.0f}" role="img" '
        f'font-size="{FONT}" font-family="system-ui, sans-serif">'
    ]
    if description or title:
        out.append(f"<desc>{escape(description or title or '')}</desc>")
    if title:
        out.append(
            f'<text x="{left:.0f}" y="14" font-weight="600" font-size="12">{escape(title)}</text>'
        )
    # grid and axes
    for tick in nice_ticks(y_lo, y_hi, 5):
        if y_lo - 1e-9 <= tick <= y_hi + 1e-9:
            y = py(tick)
            out.append(
                f'<line x1="{left:.0f}" x2="{left + plot_w:.0f}" y1="{y:.2f}" y2="{y:.2f}" '
                'stroke="#e3e5ea"/>'
                f'<text x="{left - 5:.0f}" y="{y + 4:.2f}" text-anchor="end" fill="#555">'
                f"{escape(_tick_label(tick))}</text>"
            )
    if x_ticks:
        ticks = list(x_ticks)
    else:
        values = nice_ticks(x_lo, x_hi, 8)
        if xs and all(float(x).is_integer() for x in xs):  # indices: no fractional ticks
            values = [t for t in values if float(t).is_integer()] or values
        ticks = [(t, _tick_label(t)) for t in values]
    for value, label in ticks:
        if x_lo - 1e-9 <= value <= x_hi + 1e-9:
            x = px(value)
            out.append(
                f'<line x1="{x:.2f}" x2="{x:.2f}" y1="{top + plot_h:.0f}" '
                f'y2="{top + plot_h + 4:.0f}" stroke="#888"/>'
                f'<text x="{x:.2f}" y="{top + plot_h + 15:.0f}" text-anchor="middle" '
                f'fill="#555">{escape(label)}</text>'
            )
    out.append(
        f'<rect x="{left:.0f}" y="{top:.0f}" width="{plot_w:.0f}" height="{plot_h:.0f}" '
        'fill="none" stroke="#999"/>'
    )
    if x_label:
        out.append(
            f'<text x="{left + plot_w / 2:.0f}" y="{top + plot_h + 31:.0f}" '
            f'text-anchor="middle" fill="#333">{escape(x_label)}</text>'
        )
    if y_label:
        cy = top + plot_h / 2
        out.append(
            f'<text x="12" y="{cy:.0f}" text-anchor="middle" fill="#333" '
            f'transform="rotate(-90 12 {cy:.0f})">{escape(y_label)}</text>'
        )
    for i, s in enumerate(series):
        colour, dash = series_style(i)
        colour = s.colour or colour
        dash = s.dash if s.dash is not None else dash
        out.append(_series_svg(s, colour, dash, px, py))
    # legend
    y0 = height + 4
    for r, row in enumerate(rows):
        y = y0 + 16 * r
        for i, x_off in row:
            s = series[i]
            colour, dash = series_style(i)
            colour = s.colour or colour
            dash = s.dash if s.dash is not None else dash
            x = left + x_off
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            if s.width > 0:
                out.append(
                    f'<line x1="{x:.1f}" x2="{x + 20:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{colour}" stroke-width="{s.width + 0.6:.1f}"{dash_attr}/>'
                )
            if s.markers and (s.width == 0 or s.lower is not None):
                out.append(f'<circle cx="{x + 10:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>')
            out.append(
                f'<text x="{x + 25:.1f}" y="{y + 4:.1f}" fill="#222">{escape(s.label)}</text>'
            )
    out.append("</svg>")
    return "".join(out)


def _series_svg(s: Series, colour: str, dash: str, px, py) -> str:
    parts = [f"<g><title>{escape(s.label)}</title>"]
    points = [
        (float(x), float(y))
        for x, y in zip(s.x, s.y, strict=True)
        if math.isfinite(float(x)) and math.isfinite(float(y))
    ]
    # Break the polyline at gaps (NaN values) so missing views are not bridged.
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(s.x, s.y, strict=True):
        if math.isfinite(float(y)) and math.isfinite(float(x)):
            runs[-1].append((px(float(x)), py(float(y))))
        elif runs[-1]:
            runs.append([])
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    for run in runs:
        if len(run) >= 2:
            coords = " ".join(f"{x:.2f},{y:.2f}" for x, y in run)
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                f'stroke-width="{s.width}"{dash_attr} stroke-linejoin="round"/>'
            )
    if s.lower is not None and s.upper is not None:
        for x, lo, hi in zip(s.x, s.lower, s.upper, strict=True):
            if all(math.isfinite(float(v)) for v in (x, lo, hi)):
                X = px(float(x))
                parts.append(
                    f'<path d="M{X:.2f} {py(float(lo)):.2f}V{py(float(hi)):.2f}'
                    f'M{X - 3:.2f} {py(float(lo)):.2f}h6M{X - 3:.2f} {py(float(hi)):.2f}h6" '
                    f'stroke="{colour}" stroke-width="1.2" fill="none"/>'
                )
    if s.markers and points:
        k = 0
        for x, y in zip(s.x, s.y, strict=True):
            if not (math.isfinite(float(x)) and math.isfinite(float(y))):
                k += 1
                continue
            fill = s.point_colours[k] if s.point_colours is not None else colour
            tip = (
                f"<title>{escape(s.point_titles[k])}</title>" if s.point_titles is not None else ""
            )
            parts.append(
                f'<circle cx="{px(float(x)):.2f}" cy="{py(float(y)):.2f}" r="3" '
                f'fill="{fill}" stroke="{colour}" stroke-width="1">{tip}</circle>'
            )
            k += 1
    parts.append("</g>")
    return "".join(parts)


def correctness_colours(correct: Sequence[bool]) -> list[str]:
    """Marker colours: green where the view's top-1 is c*, red where it is not."""
    return [CORRECT if bool(c) else WRONG for c in correct]


def png_data_uri(image: Image.Image, format: str = "PNG", quality: int = 85) -> str:
    """A PIL image as a `data:` URI (PNG, or JPEG for photographs)."""
    buffer = io.BytesIO()
    if format.upper() == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=quality, optimize=True)
        mime = "image/jpeg"
    else:
        image.save(buffer, "PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def wall_image(states: np.ndarray, cell_w: int, cell_h: int) -> Image.Image:
    """The study's wall as a raster: one cell per (image row, view column).

    states: int array [rows, cols]: 2 = top-1 is c*, 1 = c* in the top-5 only, 0 = c*
    outside the top-5, -1 = no prediction. Cells are cell_w x cell_h px (nearest-neighbour, so
    the picture stays crisp), separated by 1 px gaps when cells are large enough.
    """
    states = np.asarray(states, dtype=np.int64)
    lut = np.zeros((4, 3), dtype=np.uint8)
    for state, rgb in WALL_COLOURS.items():
        lut[state + 1] = rgb
    rgb = lut[np.clip(states, -1, 2) + 1]  # [rows, cols, 3]
    big = np.repeat(np.repeat(rgb, cell_h, axis=0), cell_w, axis=1)
    if cell_w >= 6 and cell_h >= 6:
        big[cell_h - 1 :: cell_h, :, :] = 255
        big[:, cell_w - 1 :: cell_w, :] = 255
    return Image.fromarray(np.ascontiguousarray(big), "RGB")


def wall_svg(
    states: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    row_notes: Sequence[str] | None = None,
    row_titles: Sequence[str] | None = None,
    max_width: int = 560,
    max_height: int = 560,
    description: str = "",
) -> str:
    """The wall (rows: images, columns: views) as SVG: the raster plus row labels on the left,
    view ticks on top and an optional note per row on the right (e.g. its jaggedness)."""
    states = np.asarray(states)
    rows, cols = states.shape
    cell_w = int(max(3, min(36, max_width // max(cols, 1))))
    cell_h = int(max(3, min(22, max_height // max(rows, 1))))
    image = wall_image(states, cell_w, cell_h)
    label_w = min(220, 12 + _CHAR * max((len(t) for t in row_labels), default=4))
    note_w = 12 + _CHAR * max((len(t) for t in row_notes), default=0) if row_notes else 0
    top = 20.0
    width = label_w + cols * cell_w + note_w + 8
    height = top + rows * cell_h + 4
    uri = png_data_uri(image)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wall" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'font-size="{FONT}" font-family="system-ui, sans-serif">',
        f"<desc>{escape(description)}</desc>",
        f'<image x="{label_w:.0f}" y="{top:.0f}" width="{cols * cell_w}" '
        f'height="{rows * cell_h}" href="{uri}" style="image-rendering:pixelated"/>',
    ]
    every = max(1, math.ceil(cols * 22 / max(cols * cell_w, 1)))
    for c, label in enumerate(col_labels):
        if c % every == 0 or c == cols - 1:
            x = label_w + (c + 0.5) * cell_w
            out.append(
                f'<text x="{x:.1f}" y="{top - 6:.0f}" text-anchor="middle" fill="#555">'
                f"{escape(label)}</text>"
            )
    show_every = max(1, math.ceil(13 / cell_h))
    max_chars = int((label_w - 8) / _CHAR)
    for r, label in enumerate(row_labels):
        y = top + (r + 0.5) * cell_h + 4
        tip = row_titles[r] if row_titles is not None else label
        text = label if len(label) <= max_chars else "…" + label[-(max_chars - 1) :]
        if r % show_every == 0:
            out.append(
                f'<text x="{label_w - 5:.0f}" y="{y:.1f}" text-anchor="end" fill="#333">'
                f"<title>{escape(tip)}</title>{escape(text)}</text>"
            )
        if row_notes is not None and r % show_every == 0:
            out.append(
                f'<text x="{label_w + cols * cell_w + 6:.0f}" y="{y:.1f}" fill="#555">'
                f"{escape(row_notes[r])}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def views_and_curve_svg(
    thumbnails: Sequence[tuple[int, str | None, str]],
    p_values: Sequence[float],
    correct: Sequence[bool],
    tick_labels: Sequence[str],
    *,
    colour: str = "#1f77b4",
    point_titles: Sequence[str] | None = None,
    thumb: int = 64,
    curve_height: int = 96,
    description: str = "",
) -> str:
    """The study's Figure 1 for one image: its views in a row, and under them P(c*) at every
    view, on one x axis (the curve's points line up with the views above them).

    Args:
        thumbnails: (position in the sequence, image data URI or None, tooltip) per shown view,
            in sequence order; a None URI leaves an empty frame.
        p_values, correct: P(c*) and whether top-1 == c*, for every view of the sequence.
        tick_labels: x label of every view (view index, or embedded size).
        colour: the curve's colour (matches the image's series in the overview chart).
        point_titles: tooltip of every point.
    """
    n = len(p_values)
    shown = max(len(thumbnails), 1)
    frame = thumb + 6
    pitch = frame + 4
    left, top = 34.0, 4.0
    if shown >= 2:
        span = float((shown - 1) * pitch)
    else:  # no strip to line up with: give the curve a width of its own
        span = float(max(frame, min(440, 40 * (n - 1))))
    width = left + frame + span + 6
    strip_h = frame if thumbnails else 0
    curve_top = top + strip_h + 8
    height = curve_top + curve_height + 18

    def px(pos: float) -> float:
        return left + frame / 2 + (pos / max(n - 1, 1)) * span

    def py(p: float) -> float:
        return curve_top + (1 - p) * curve_height

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sequence" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'font-size="10" font-family="system-ui, sans-serif">',
        f"<desc>{escape(description)}</desc>",
    ]
    for j, (pos, uri, tip) in enumerate(thumbnails):
        x = left + j * pitch
        ok = bool(correct[pos]) if 0 <= pos < n else False
        stroke = CORRECT if ok else WRONG
        out.append(f"<g><title>{escape(tip)}</title>")
        out.append(
            f'<rect x="{x + 1.5:.1f}" y="{top + 1.5:.1f}" width="{frame - 3}" '
            f'height="{frame - 3}" fill="#f0f0f0" stroke="{stroke}" stroke-width="3" rx="2"/>'
        )
        if uri:
            out.append(
                f'<image x="{x + 3:.1f}" y="{top + 3:.1f}" width="{thumb}" height="{thumb}" '
                f'href="{escape(uri)}"/>'
            )
        # a faint guide from the view down to its point on the curve
        out.append(
            f'<line x1="{px(pos):.1f}" x2="{px(pos):.1f}" y1="{top + frame:.1f}" '
            f'y2="{curve_top + curve_height:.1f}" stroke="#e3e5ea" stroke-dasharray="2 2"/>'
            "</g>"
        )
    for p in (0.0, 0.5, 1.0):
        y = py(p)
        out.append(
            f'<line x1="{left:.0f}" x2="{width - 6:.0f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#c9ccd3" if p != 0.5 else "#eceef2"}"/>'
            f'<text x="{left - 4:.0f}" y="{y + 3.5:.1f}" text-anchor="end" fill="#666">'
            f"{_tick_label(p)}</text>"
        )
    out.append(
        f'<text x="9" y="{curve_top + curve_height / 2:.0f}" text-anchor="middle" fill="#444" '
        f'transform="rotate(-90 9 {curve_top + curve_height / 2:.0f})">P(c*)</text>'
    )
    coords = [
        f"{px(k):.1f},{py(float(p)):.1f}" for k, p in enumerate(p_values) if math.isfinite(float(p))
    ]
    if len(coords) >= 2:
        out.append(
            f'<polyline points="{" ".join(coords)}" fill="none" stroke="{colour}" '
            'stroke-width="1.8" stroke-linejoin="round"/>'
        )
    every = max(1, math.ceil(n * 24 / max(span, 1)))
    for k, p in enumerate(p_values):
        if not math.isfinite(float(p)):
            continue
        fill = CORRECT if bool(correct[k]) else WRONG
        tip = f"<title>{escape(point_titles[k])}</title>" if point_titles is not None else ""
        out.append(
            f'<circle cx="{px(k):.1f}" cy="{py(float(p)):.1f}" r="3" fill="{fill}" '
            f'stroke="#fff" stroke-width="0.8">{tip}</circle>'
        )
    for k, label in enumerate(tick_labels):
        if k % every == 0 or k == n - 1:
            out.append(
                f'<text x="{px(k):.1f}" y="{height - 4:.0f}" text-anchor="middle" fill="#666">'
                f"{escape(label)}</text>"
            )
    out.append("</svg>")
    return "".join(out)
