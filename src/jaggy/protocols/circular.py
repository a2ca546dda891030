"""`circular`: `torch.roll` of the model's standard input (exact-invariance tests)."""

from __future__ import annotations

import torch

from ._base import Protocol, SourceRequest, ViewParams
from ._paths import path_offsets
from ._registry import register_protocol


@register_protocol
class CircularProtocol(Protocol):
    """View k is the standard eval input rolled by (dy_k, dx_k): content moves right/down and
    what leaves one border re-enters at the opposite one (APS-style circular shifts)."""

    name = "circular"
    description = "torch.roll of the standard input along the path"

    def source(self) -> SourceRequest:
        return SourceRequest("standard", self.input_size)

    def view_params(self) -> list[ViewParams]:
        return [
            ViewParams(dx, dy, self.input_size)
            for dx, dy in path_offsets(self.options.path, self.options.steps)
        ]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        params = self.view_params()
        return torch.stack(
            [
                torch.roll(source, shifts=(int(params[k].dy), int(params[k].dx)), dims=(-2, -1))
                for k in indices
            ]
        )
