"""`canvas`: an object visits every position of the model's input canvas, one cell at a time.

The image is resized to S x S and pasted on an R x R black canvas (R the model's input size)
with its top-left corner at every position (x, y), 0 <= x, y <= R - S. The positions are cut
into cells of `CELL` x `CELL` (the last row and column of cells may be narrower); each cell is
one protocol instance, key `canvas@S/xXyY` with (X, Y) the cell's first position, whose views
visit the cell's positions in serpentine order, so consecutive views are 1 px apart. Per-image
metrics of a key are therefore the metrics of one region of the canvas, and the keys of one
size together tile every position: maps of accuracy and of P(top-1 change) over the canvas
come straight from the engine's per-image table.

Conventions: `dx`, `dy` of a view are the absolute position of the image's top-left corner on
the canvas in px (x right, y down); `size` is S. The background is the model's black.
"""

from __future__ import annotations

import re

import torch

from ..errors import ArgumentError
from ._base import Protocol, SourceRequest, ViewParams
from ._registry import register_protocol

CELL = 4  # px: the side of the square of positions one protocol instance covers
_KEY = re.compile(r"^canvas@(\d+)/x(\d+)y(\d+)$")


def parse_canvas_key(key: str) -> tuple[int, int, int] | None:
    """(S, X, Y) of a `canvas@S/xXyY` key, or None for any other key."""
    match = _KEY.match(key)
    return tuple(int(g) for g in match.groups()) if match else None  # type: ignore[return-value]


def cell_positions(x0: int, y0: int, width: int, height: int) -> list[tuple[int, int]]:
    """Positions of a width x height cell starting at (x0, y0), serpentine: left to right on
    even rows, right to left on odd rows (consecutive positions 1 px apart)."""
    out = []
    for row in range(height):
        cols = range(width) if row % 2 == 0 else range(width - 1, -1, -1)
        out.extend((x0 + col, y0 + row) for col in cols)
    return out


@register_protocol
class CanvasProtocol(Protocol):
    """One cell of positions for one object size S (see the module docstring)."""

    name = "canvas"
    description = (
        "image of side S at every position of a black canvas, one cell of positions per key"
    )
    sized = True

    def __init__(self, preprocessing, options, size: int, cell_x: int = 0, cell_y: int = 0) -> None:
        super().__init__(preprocessing, options)
        self.size = int(size)
        self.cell_x = int(cell_x)
        self.cell_y = int(cell_y)

    @classmethod
    def instances(cls, preprocessing, options) -> list[CanvasProtocol]:
        """Every cell of every size in `options.sizes`, row by row."""
        out = []
        for size in options.sizes:
            positions = preprocessing.input_size - int(size) + 1
            if int(size) < 1 or positions < 1:
                raise ArgumentError(
                    f"canvas: --size {size} does not fit the {preprocessing.input_size} px "
                    f"canvas; use a size from 1 to {preprocessing.input_size}"
                )
            for y in range(0, positions, CELL):
                for x in range(0, positions, CELL):
                    out.append(cls(preprocessing, options, size, x, y))
        return out

    @property
    def key(self) -> str:
        return f"{self.name}@{self.size}/x{self.cell_x}y{self.cell_y}"

    def params(self) -> dict:
        width, height = self._extent()
        return {
            "name": self.name,
            "key": self.key,
            "input_size": self.input_size,
            "size": self.size,
            "cell": [self.cell_x, self.cell_y, width, height],
        }

    def source(self) -> SourceRequest:
        return SourceRequest("square", self.size)

    def _extent(self) -> tuple[int, int]:
        positions = self.input_size - self.size + 1
        return min(CELL, positions - self.cell_x), min(CELL, positions - self.cell_y)

    def view_params(self) -> list[ViewParams]:
        width, height = self._extent()
        if width < 1 or height < 1:
            raise ArgumentError(
                f"canvas cell ({self.cell_x}, {self.cell_y}) lies outside the positions of a "
                f"{self.size} px image on the {self.input_size} px canvas"
            )
        return [
            ViewParams(x, y, self.size)
            for x, y in cell_positions(self.cell_x, self.cell_y, width, height)
        ]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        r, s = self.input_size, self.size
        params = self.view_params()
        black = torch.tensor(self.preprocessing.black_value(), device=source.device)
        canvas = black.to(source.dtype).view(1, 3, 1, 1).expand(len(indices), 3, r, r).clone()
        for i, k in enumerate(indices):
            x, y = int(params[k].dx), int(params[k].dy)
            canvas[i, :, y : y + s, x : x + s] = source
        return canvas
