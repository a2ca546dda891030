"""Colours shared by every figure: a qualitative cycle long enough for a run's protocols, and
the three states of the study's wall."""

from __future__ import annotations

# 20 qualitative colours, ordered so that neighbours differ strongly (hue and lightness).
# After 20 series the cycle repeats with a different dash pattern, so no two series look alike.
PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#393b79",
    "#7f7f7f",
    "#ad494a",
    "#637939",
    "#e6550d",
    "#3182bd",
    "#7b4173",
    "#31a354",
    "#8c6d31",
    "#d6616b",
    "#000000",
)
# After len(PALETTE) series, the next dash pattern.
MPL_LINESTYLES = ("-", (0, (6, 3)), (0, (2, 2)), (0, (8, 3, 2, 3)))
MPL_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

# The wall: top-1 == c* (lit), c* only in the top-5 (dim), c* outside the top-5 (dark).
WALL_COLOURS = {
    2: (242, 193, 78),
    1: (91, 107, 140),
    0: (27, 31, 42),
    -1: (255, 255, 255),
}
CORRECT = "#2b9348"
WRONG = "#d62728"


def mpl_style(index: int) -> dict:
    """matplotlib keyword arguments (color, linestyle, marker) of the series at `index`;
    distinct for the first len(PALETTE) * len(MPL_LINESTYLES) series."""
    return {
        "color": PALETTE[index % len(PALETTE)],
        "linestyle": MPL_LINESTYLES[(index // len(PALETTE)) % len(MPL_LINESTYLES)],
        "marker": MPL_MARKERS[index % len(MPL_MARKERS)],
    }
