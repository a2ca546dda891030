"""`neighbours`: a centre crop against each of its 8 one-pixel neighbours (realistic shifts).

Shifman & Weiss ("Lost in Translation", ECCV 2024) call a shift *realistic* when it moves the
camera, not the pixels in a circle: the shifted view is another R x R window of the same
larger image, so new content enters at one border. This protocol takes the centre square of
the image resized to R + 2 px, its centre R x R window, and the 8 windows one pixel away
horizontally, vertically and diagonally.

Views come in disjoint pairs (2i, 2i + 1) = (centre, neighbour i), so every pair metric
compares the centre with one neighbour and nothing else: P(top-1 change) is the fraction of
the 8 neighbours that change the answer, `representation_change_rate` the fraction that
change the features beyond τ, `fooling_rate` whether any of them does. The centre is thus
made and run 8 times (16 views per image); its answer is the same each time.

Conventions: shifts in pixels of the model input; `dx` > 0 moves the content right, which
is the window moving left (as in `crop`). Neighbour order: (dx, dy) = (1, 0), (1, 1), (0, 1),
(-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), counter-clockwise from the right on screen.
"""

from __future__ import annotations

import torch

from ._base import Protocol, SourceRequest, ViewParams
from ._registry import register_protocol

NEIGHBOURS = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))


@register_protocol
class NeighboursProtocol(Protocol):
    name = "neighbours"
    description = "the centre R x R crop paired with each of its 8 one-pixel neighbours"
    pairing = "disjoint"

    @property
    def side(self) -> int:
        return self.input_size + 2

    def params(self) -> dict:
        return {
            **super().params(),
            "path": None,
            "steps": None,
            "source_side": self.side,
            "neighbours": [list(n) for n in NEIGHBOURS],
        }

    def source(self) -> SourceRequest:
        return SourceRequest("square", self.side)

    def view_params(self) -> list[ViewParams]:
        views = []
        for dx, dy in NEIGHBOURS:
            views += [ViewParams(0, 0, self.input_size), ViewParams(dx, dy, self.input_size)]
        return views

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        r = self.input_size
        params = self.view_params()
        windows = []
        for k in indices:
            # the window of content moved by (dx, dy) starts 1 - dx, 1 - dy px into the source
            x, y = 1 - int(params[k].dx), 1 - int(params[k].dy)
            windows.append(source[:, y : y + r, x : x + r])
        return torch.stack(windows)
