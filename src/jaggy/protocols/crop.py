"""`crop`: R x R windows, 1 px apart along the path, of one image resized to R + steps."""

from __future__ import annotations

import torch

from ._base import Protocol, SourceRequest, ViewParams
from ._paths import path_offsets, path_span
from ._registry import register_protocol


@register_protocol
class CropProtocol(Protocol):
    """The study's Crop protocol (224 windows of an image resized to 234, 1 px apart).

    The centre square of the image is resized to L = R + steps; the path of windows is centred
    in it. View k is the window whose top-left corner is (x0 + o_k, y0 + p_k) for the path's
    offsets (o_k, p_k). Moving the window right by 1 px moves the content left by 1 px, so,
    with the shared convention that `dx` > 0 moves content right, view k has dx = -o_k and
    dy = -p_k.
    """

    name = "crop"
    description = "R x R windows 1 px apart of one image resized to R + steps"

    @property
    def side(self) -> int:
        return self.input_size + self.options.steps

    def source(self) -> SourceRequest:
        return SourceRequest("square", self.side)

    def view_params(self) -> list[ViewParams]:
        return [
            ViewParams(-ox, -oy, self.input_size)
            for ox, oy in path_offsets(self.options.path, self.options.steps)
        ]

    def _origin(self) -> tuple[int, int]:
        span_x, span_y = path_span(self.options.path, self.options.steps)
        return (self.side - self.input_size - span_x) // 2, (
            self.side - self.input_size - span_y
        ) // 2

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        x0, y0 = self._origin()
        r = self.input_size
        params = self.view_params()
        windows = []
        for k in indices:
            x, y = x0 - int(params[k].dx), y0 - int(params[k].dy)
            windows.append(source[:, y : y + r, x : x + r])
        return torch.stack(windows)
