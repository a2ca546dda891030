"""The study's Figure 1 for one image: the views the model saw in a row, and under them P(c*)
at every view on one x axis, so each view sits above its point.

Its layout is fixed pixel geometry (frames, a curve block, three y ticks), so the SVG is written
directly (`_svg_writer`): a report draws dozens of these, and matplotlib's generic machinery
(text layout, transforms, SVG parsing) cost about 0.1 s each for what is a few elements."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._deferred import deferrable
from ._palette import CORRECT, WRONG
from ._svg_writer import (
    element,
    image_data_uri,
    num,
    segment,
    svg_document,
    text_at,
    titled,
)

GUIDE = "#e3e5ea"  # dashed view-to-point guides and the y grid (the report's grid colour)
TICK = "#555555"  # tick label colour (as `_svg_export.STYLE`)


def correctness_colours(correct: Sequence[bool]) -> list[str]:
    """Marker colours: green where the view's top-1 is c*, red where it is not."""
    return [CORRECT if bool(c) else WRONG for c in correct]


@deferrable
def views_and_curve_svg(
    thumbnails: Sequence[tuple[int, np.ndarray | None, str]],
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
    """One image's views above its P(c*) curve, as inline SVG.

    Args:
        thumbnails: (position in the sequence, pixels uint8 [thumb, thumb, 3] or None, hover
            text) per shown view, in sequence order; None leaves an empty frame. Frames are
            green where top-1 is c*, red where it is not; pixels are embedded as JPEG.
        p_values, correct: P(c*) and whether top-1 == c*, for every view of the sequence.
        tick_labels: x label of every view (shift in px, or embedded size).
        colour: the curve's colour (matches the image's line in the protocol's chart).
        point_titles: hover text of every point.

    Returns:
        SVG markup (class "sequence"); every string in it is XML-escaped.
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
    strip = frame if thumbnails else 0
    curve_top = top + strip + 8
    curve_bottom = curve_top + curve_height
    height = curve_bottom + 18
    right = width - 6
    step = span / max(n - 1, 1)  # px per view along the curve

    def x_px(position: float) -> float:
        return left + frame / 2 + position * step

    def y_px(p: float) -> float:
        return curve_bottom - p * curve_height

    body: list[str] = []
    for j, (position, pixels, tip) in enumerate(thumbnails):  # frames, then views on them
        x = left + j * pitch
        ok = 0 <= position < n and bool(correct[position])
        body.append(
            element(
                "rect",
                x=num(x + 1.5),
                y=num(top + 1.5),
                width=num(frame - 3),
                height=num(frame - 3),
                style=f"fill:#f0f0f0;stroke:{CORRECT if ok else WRONG};stroke-width:3;"
                "stroke-linejoin:miter",
            )
        )
        if pixels is not None:
            image = element(
                "image",
                x=num(x + 3),
                y=num(top + 3),
                width=num(thumb),
                height=num(thumb),
                href=image_data_uri(pixels, "JPEG", quality=72),
            )
            body.append(titled(tip, image))
    for position, _, _ in thumbnails:  # a dashed guide from each view down to its point
        gx = num(x_px(position))
        body.append(
            segment(
                gx,
                num(top + frame),
                gx,
                num(curve_bottom),
                f"fill:none;stroke-dasharray:2,2;stroke:{GUIDE}",
            )
        )
    every = max(1, int(np.ceil(24 / max(step, 1e-9))))
    for i in range(n):  # x tick labels: at most one per 24 px, and the last view
        if i % every == 0 or i == n - 1:
            body.append(
                text_at(
                    tick_labels[i],
                    num(x_px(i)),
                    num(curve_bottom + 9.84),
                    f"font-size:9px;text-anchor:middle;fill:{TICK}",
                )
            )
    for p, label in ((0.0, "0"), (0.5, "0.5"), (1.0, "1")):  # y grid and tick labels
        y = num(y_px(p))
        body.append(
            segment(
                num(left),
                y,
                num(right),
                y,
                f"fill:none;stroke:{GUIDE};stroke-width:0.8;stroke-linecap:square",
            )
        )
        body.append(
            element(
                "text",
                label,
                style=f"font-size:9px;text-anchor:end;fill:{TICK}",
                x=num(left - 3),
                y=num(y_px(p) + 3.42),
            )
        )
    label_x, label_y = num(12.28), num(curve_top + curve_height / 2)
    body.append(
        element(
            "text",
            "P(c*)",
            style="font-size:10px;text-anchor:middle",
            x=label_x,
            y=label_y,
            transform=f"rotate(-90 {label_x} {label_y})",
        )
    )
    p = np.asarray(p_values, dtype=np.float64)
    finite = np.isfinite(p)
    points = [(num(x_px(k)), num(y_px(p[k]))) for k in range(n)]
    runs: list[list[int]] = []  # a NaN leaves a gap in the line
    for k in range(n):
        if not finite[k]:
            continue
        if runs and runs[-1][-1] == k - 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    for run in runs:
        if len(run) >= 2:
            body.append(
                element(
                    "polyline",
                    points=" ".join(f"{points[k][0]},{points[k][1]}" for k in run),
                    style=f"fill:none;stroke:{colour};stroke-width:1.8;stroke-linecap:square",
                )
            )
    radius = num(np.sqrt(30) / 2)  # a scatter point of 30 px^2, as the charts draw them
    for k in np.nonzero(finite)[0]:
        fill = CORRECT if bool(correct[k]) else WRONG
        mark = element(
            "circle",
            cx=points[k][0],
            cy=points[k][1],
            r=radius,
            style=f"fill:{fill};stroke:#ffffff;stroke-width:0.8",
        )
        body.append(titled(point_titles[k] if point_titles is not None else None, mark))
    return svg_document(width, height, body, css_class="sequence", description=description)
