"""`scale`: the embedded image grows by 1 px per view (S, S+1, ...), centred on the canvas."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ArgumentError
from ..models._interpolation import torch_mode
from ._base import Protocol, SourceRequest, ViewParams
from ._registry import register_protocol


@register_protocol
class ScaleProtocol(Protocol):
    """View k is the square image resized to S + k px, pasted at ((R - s) // 2, (R - s) // 2)
    on a black canvas. Every size is made on the device (antialiased interpolation) from one
    source twice the largest size, so all views share one resampling method. S is the first
    --size. Centring with integer offsets moves the image's centre by 0.5 px per view."""

    name = "scale"
    description = "embedded image grows by 1 px per view, centred on a black canvas"

    @property
    def first_size(self) -> int:
        return int(self.options.embed_sizes(self.input_size)[0])

    def params(self) -> dict:
        return {**super().params(), "path": None, "first_size": self.first_size}

    def source(self) -> SourceRequest:
        return SourceRequest("square", 2 * (self.first_size + self.options.steps - 1))

    def view_params(self) -> list[ViewParams]:
        last = self.first_size + self.options.steps - 1
        if self.options.steps < 2:
            raise ArgumentError("--steps must be at least 2")
        if self.options.steps > self.input_size - 7:  # no first size of 8 px or more fits
            raise ArgumentError(
                f"scale: {self.options.steps} sizes 1 px apart do not fit the "
                f"{self.input_size} px canvas; use --steps at most {self.input_size - 7}"
            )
        if last > self.input_size:
            raise ArgumentError(
                f"scale: sizes {self.first_size}..{last} do not fit the {self.input_size} px "
                f"canvas; use a --size of at most {self.input_size - self.options.steps + 1}"
            )
        return [ViewParams(0, 0, self.first_size + k) for k in range(self.options.steps)]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        r = self.input_size
        mode = torch_mode(self.preprocessing.interpolation)
        black = torch.tensor(self.preprocessing.black_value(), device=source.device)
        views = black.to(source.dtype).view(1, 3, 1, 1).expand(len(indices), 3, r, r).clone()
        params = self.view_params()
        for i, k in enumerate(indices):
            s = params[k].size
            resized = F.interpolate(
                source[None],
                size=(s, s),
                mode=mode,
                antialias=mode != "nearest",
                align_corners=False if mode != "nearest" else None,
            )[0]
            o = (r - s) // 2
            views[i, :, o : o + s, o : o + s] = resized
        return views
