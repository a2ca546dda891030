"""Shift paths: the ordered (dx, dy) offsets of a view sequence, in pixels."""

from __future__ import annotations

from ..errors import ArgumentError

PATHS = ("diagonal", "horizontal", "vertical", "grid")


def path_offsets(path: str, steps: int) -> list[tuple[int, int]]:
    """Offsets (dx, dy) of each view, starting at (0, 0), 1 px apart.

    'grid' covers steps x steps offsets in serpentine order (left-to-right, then
    right-to-left on the next row), so consecutive views are always 1 px apart.
    """
    if steps < 2:
        raise ArgumentError(f"--steps must be at least 2 (got {steps}): metrics compare views")
    if path == "diagonal":
        return [(k, k) for k in range(steps)]
    if path == "horizontal":
        return [(k, 0) for k in range(steps)]
    if path == "vertical":
        return [(0, k) for k in range(steps)]
    if path == "grid":
        offsets = []
        for row in range(steps):
            cols = range(steps) if row % 2 == 0 else range(steps - 1, -1, -1)
            offsets.extend((col, row) for col in cols)
        return offsets
    raise ArgumentError(f"unknown --path '{path}'; choose one of: {', '.join(PATHS)}")


def path_span(path: str, steps: int) -> tuple[int, int]:
    """Largest (dx, dy) reached by the path."""
    offsets = path_offsets(path, steps)
    return max(o[0] for o in offsets), max(o[1] for o in offsets)
