"""The study's wall: one row per image, one column per view, lit where the answer is c*."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._deferred import deferrable
from ._palette import WALL_COLOURS
from ._svg_export import figure_svg, new_figure, svg_style

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
    with svg_style():
        figure = new_figure(width, height)
        axes = figure.add_axes((0, 0, 1, 1))
        axes.imshow(
            wall_colours(states),
            interpolation="none",
            aspect="auto",
            extent=(-0.5, cols - 0.5, rows - 0.5, -0.5),
        )
        if cell_w >= 6 and cell_h >= 6:  # white gaps between large cells
            axes.hlines(np.arange(rows - 1) + 0.5, -0.5, cols - 0.5, colors="white", lw=1)
            axes.vlines(np.arange(cols - 1) + 0.5, -0.5, rows - 0.5, colors="white", lw=1)
        axes.grid(False)
        for spine in axes.spines.values():
            spine.set_visible(False)
        axes.xaxis.tick_top()
        shown_cols = [c for c in range(cols) if c % col_every == 0 or c == cols - 1]
        axes.set_xticks(shown_cols, [col_labels[c] for c in shown_cols])
        axes.tick_params(length=0, pad=3)
        shown_rows = [r for r in range(rows) if r % show_every == 0]
        axes.set_yticks(shown_rows, [_short(row_labels[r]) for r in shown_rows])
        titles = {}
        for r, label in zip(shown_rows, axes.get_yticklabels(), strict=True):
            label.set_gid(f"row{r}")
            titles[f"row{r}"] = row_titles[r] if row_titles is not None else row_labels[r]
        if row_notes is not None:
            for r in shown_rows:
                axes.text(cols - 0.5 + 6 / cell_w, r, row_notes[r], va="center", fontsize=9)
        axes.set_xlim(-0.5, cols - 0.5)
        axes.set_ylim(rows - 0.5, -0.5)
        return figure_svg(
            figure, description=description, css_class="wall", titles=titles, tight=True
        )
