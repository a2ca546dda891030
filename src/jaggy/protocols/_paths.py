"""Shift paths: the ordered (dx, dy) offsets of a view sequence, in pixels."""

from __future__ import annotations

from ..errors import ArgumentError

PATHS = ("diagonal", "horizontal", "vertical", "grid")
MAX_VIEWS = 1_000_000  # per image and protocol: more is never a measurement, only a crash


def path_length(path: str, steps: int) -> int:
    """Views along `path` with `steps` steps (grid: steps x steps)."""
    return steps * steps if path == "grid" else steps


def check_path_length(path: str, steps: int, argument: str = "--steps") -> None:
    """Refuse a path of more than MAX_VIEWS views before any list of them is built."""
    views = path_length(path, steps)
    if views > MAX_VIEWS:
        most = int(MAX_VIEWS**0.5) if path == "grid" else MAX_VIEWS
        raise ArgumentError(
            f"{argument} {steps} along '{path}' makes {views:,} views per image, more than "
            f"{MAX_VIEWS:,}; use {argument} at most {most:,}"
        )


def path_offsets(path: str, steps: int) -> list[tuple[int, int]]:
    """Offsets (dx, dy) of each view, starting at (0, 0), 1 px apart.

    'grid' covers steps x steps offsets in serpentine order (left-to-right, then
    right-to-left on the next row), so consecutive views are always 1 px apart.
    """
    if steps < 2:
        raise ArgumentError(f"--steps must be at least 2 (got {steps}): metrics compare views")
    check_path_length(path, steps)
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
    """Largest (dx, dy) reached by the path (without listing it)."""
    if steps < 2:
        raise ArgumentError(f"--steps must be at least 2 (got {steps}): metrics compare views")
    if path not in PATHS:
        raise ArgumentError(f"unknown --path '{path}'; choose one of: {', '.join(PATHS)}")
    return (0 if path == "vertical" else steps - 1), (0 if path == "horizontal" else steps - 1)
