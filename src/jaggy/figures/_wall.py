"""The study's wall: one row per image, one column per view, lit where the answer is c*.

Its layout is fixed px geometry (cells, labels around them), so the SVG is written directly
(`_svg_writer`), laid out as matplotlib draws it cropped to its content (2.16 px margin).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._deferred import deferrable
from ._palette import WALL_COLOURS
from ._svg_writer import (
    element,
    image_data_uri,
    num,
    segment,
    svg_document,
    text_at,
    text_width,
    titled,
)

MARGIN = 2.16  # px around what the wall draws (matplotlib's tight crop, 0.03 in)
FONT = 9.0  # px, every label
ASCENT, DESCENT = 0.76, 0.24  # of a line of text, per px of font size
LABEL_PAD = 3.0  # px between the cells and the labels

MAX_LABEL_CHARS = 36  # longer image ids keep their end (the file name)


def wall_colours(states: np.ndarray) -> np.ndarray:
    """RGB cells [rows, cols, 3] uint8 of wall states (2: top-1 is c*, 1: c* only in the
    top-5, 0: c* outside the top-5, -1: no prediction)."""
    lut = np.zeros((4, 3), dtype=np.uint8)
    for state, rgb in WALL_COLOURS.items():
        lut[state + 1] = rgb
    return lut[np.clip(np.asarray(states, dtype=np.int64), -1, 2) + 1]


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else "…" + label[-(MAX_LABEL_CHARS - 1) :]


@deferrable
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
    """The wall as inline SVG: cells drawn as one image (crisp at any zoom), image ids on the
    left (hover: `row_titles`), view labels on top, an optional note per row on the right
    (e.g. its jaggedness).

    Args:
        states: int array [rows, cols] of cell states (see `wall_colours`).
        row_labels, col_labels: one per row (image) and per column (view).
        max_width, max_height: the cells' block is at most this large (px); cells are 3 to 36
            px wide and 3 to 22 px high.
    """
    states = np.asarray(states)
    rows, cols = states.shape
    cell_w = int(max(3, min(36, max_width // max(cols, 1))))
    cell_h = int(max(3, min(22, max_height // max(rows, 1))))
    width, height = cols * cell_w, rows * cell_h
    show_every = max(1, -(-13 // cell_h))  # a label needs about 13 px of height
    col_every = max(1, -(-22 // cell_w))
    shown_cols = [c for c in range(cols) if c % col_every == 0 or c == cols - 1]
    shown_rows = [r for r in range(rows) if r % show_every == 0]
    row_texts = {r: _short(row_labels[r]) for r in shown_rows}

    # Cells at (x0, y0): the row labels' width on the left, the column labels above.
    widest_row = max((text_width(t, FONT) for t in row_texts.values()), default=0.0)
    col_half = {c: text_width(str(col_labels[c]), FONT) / 2 for c in shown_cols}
    x0 = MARGIN + max(
        widest_row + LABEL_PAD if shown_rows else 0.0,
        max((col_half[c] - (c + 0.5) * cell_w for c in shown_cols), default=0.0),
    )
    y0 = MARGIN + (FONT + LABEL_PAD if shown_cols else 0.0)
    right = x0 + width
    right = max([right] + [x0 + (c + 0.5) * cell_w + col_half[c] for c in shown_cols])
    if row_notes is not None:
        right = max(
            [right] + [x0 + width + 6 + text_width(str(row_notes[r]), FONT) for r in shown_rows]
        )

    body = [
        element(
            "image",
            x=num(x0),
            y=num(y0),
            width=num(width),
            height=num(height),
            preserveAspectRatio="none",
            style="image-rendering:crisp-edges;image-rendering:pixelated",
            href=image_data_uri(wall_colours(states), "PNG"),  # one pixel per cell
        )
    ]
    for c in shown_cols:
        body.append(
            text_at(
                col_labels[c],
                num(x0 + (c + 0.5) * cell_w),
                num(MARGIN + FONT * ASCENT),
                "font-size:9px;text-anchor:middle;fill:#555555",
            )
        )
    for r in shown_rows:
        label = text_at(
            row_texts[r],
            num(x0 - LABEL_PAD),
            num(y0 + (r + 0.5) * cell_h + FONT * ASCENT / 2),
            "font-size:9px;text-anchor:end;fill:#555555",
        )
        body.append(titled(row_titles[r] if row_titles is not None else row_labels[r], label))
    if cell_w >= 6 and cell_h >= 6:  # white gaps between large cells
        for r in range(1, rows):
            y = num(y0 + r * cell_h)
            body.append(segment(num(x0), y, num(x0 + width), y, "fill:none;stroke:#ffffff"))
        for c in range(1, cols):
            x = num(x0 + c * cell_w)
            body.append(segment(x, num(y0), x, num(y0 + height), "fill:none;stroke:#ffffff"))
    if row_notes is not None:
        for r in shown_rows:
            body.append(
                text_at(
                    row_notes[r],
                    num(x0 + width + 6),
                    num(y0 + (r + 0.5) * cell_h + FONT * (ASCENT - DESCENT) / 2),
                    "font-size:9px;text-anchor:start",
                )
            )
    return svg_document(
        right + MARGIN, y0 + height + MARGIN, body, css_class="wall", description=description
    )
