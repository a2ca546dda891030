"""The study's Figure 1 for one image: the views the model saw in a row, and under them P(c*)
at every view on one x axis, so each view sits above its point."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image

from ._palette import CORRECT, WRONG
from ._svg_export import figure_svg, new_figure, svg_style


def image_data_uri(pixels: np.ndarray | Image.Image, format: str = "PNG", quality: int = 85) -> str:
    """An image (uint8 array [H, W, 3] or PIL image) as a `data:` URI (PNG, or JPEG for
    photographs)."""
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels, "RGB")
    buffer = io.BytesIO()
    if format.upper() == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=quality, optimize=True)
        mime = "image/jpeg"
    else:
        image.save(buffer, "PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def correctness_colours(correct: Sequence[bool]) -> list[str]:
    """Marker colours: green where the view's top-1 is c*, red where it is not."""
    return [CORRECT if bool(c) else WRONG for c in correct]


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
    height = curve_top + curve_height + 18
    step = span / max(n - 1, 1)  # px per view along the curve

    def x_px(position: float) -> float:
        return left + frame / 2 + position * step

    with svg_style():
        figure = new_figure(width, height)
        titles: dict[str, str | list[str]] = {}
        images: dict[str, str] = {}
        if thumbnails:  # one axes in px for the whole strip, y pointing down
            strip_axes = figure.add_axes((0, 1 - (top + frame) / height, 1, frame / height))
            strip_axes.set_axis_off()
            strip_axes.set_xlim(0, width)
            strip_axes.set_ylim(top + frame, top)
        for j, (position, pixels, tip) in enumerate(thumbnails):
            x = left + j * pitch
            ok = 0 <= position < n and bool(correct[position])
            frame_box = Rectangle(
                (x + 1.5, top + 1.5),
                frame - 3,
                frame - 3,
                facecolor="#f0f0f0",
                edgecolor=CORRECT if ok else WRONG,
                linewidth=3,
                clip_on=False,
            )
            strip_axes.add_patch(frame_box)
            if pixels is not None:
                drawn = strip_axes.imshow(
                    pixels,
                    extent=(x + 3, x + 3 + thumb, top + 3 + thumb, top + 3),
                    interpolation="none",
                    aspect="auto",
                    zorder=2,  # over the frame's grey fill
                )
                drawn.set_clip_on(False)
                drawn.set_gid(f"pixels{j}")
                images[f"pixels{j}"] = image_data_uri(pixels, "JPEG", quality=72)
                titles[f"pixels{j}"] = tip
            guide_x = x_px(position)
            figure.add_artist(
                Line2D(
                    [guide_x / width] * 2,
                    [1 - (top + frame) / height, 1 - (curve_top + curve_height) / height],
                    color="#e3e5ea",
                    linestyle=(0, (2, 2)),
                    linewidth=1,
                )
            )
        right = width - 6
        axes = figure.add_axes(
            (
                left / width,
                1 - (curve_top + curve_height) / height,
                (right - left) / width,
                curve_height / height,
            )
        )
        axes.set_xlim((left - x_px(0)) / step, (right - x_px(0)) / step)
        if thumbnails:
            strip_axes.set_xlim(0, width)  # imshow changed the limits
            strip_axes.set_ylim(top + frame, top)
        axes.set_ylim(0, 1)
        axes.set_yticks([0, 0.5, 1], ["0", "0.5", "1"])
        axes.grid(axis="x", visible=False)
        axes.tick_params(length=0, pad=3)
        for spine in axes.spines.values():
            spine.set_visible(False)
        axes.set_ylabel("P(c*)", labelpad=2)
        p = np.asarray(p_values, dtype=np.float64)
        k = np.arange(n)
        finite = np.isfinite(p)
        axes.plot(k, p, color=colour, linewidth=1.8)
        points = axes.scatter(
            k[finite],
            p[finite],
            s=30,
            c=correctness_colours([correct[i] for i in k[finite]]),
            edgecolors="white",
            linewidths=0.8,
            zorder=3,
            clip_on=False,
        )
        if point_titles is not None and finite.any():
            points.set_gid("points")
            titles["points"] = [point_titles[i] for i in k[finite]]
        every = max(1, int(np.ceil(24 / max(step, 1e-9))))
        ticks = [i for i in range(n) if i % every == 0 or i == n - 1]
        axes.set_xticks(ticks, [tick_labels[i] for i in ticks])
        return figure_svg(
            figure, description=description, css_class="sequence", titles=titles, images=images
        )
