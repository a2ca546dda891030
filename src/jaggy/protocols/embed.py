"""Embed protocols: a square image downscaled to S and pasted into an R x R canvas, moved
1 px per view. Backgrounds: `black`, `mean` (zero after normalisation) and `inpaint`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ArgumentError
from ._base import Protocol, SourceRequest, ViewParams
from ._paths import path_offsets, path_span
from ._registry import register_protocol

# 5-tap binomial filter (1 4 6 4 1) / 16, the blur of the study's inpainting.
_BINOMIAL5 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


class EmbedProtocol(Protocol):
    """Base of the embed protocols: image of side S at (x0 + dx, y0 + dy) on the canvas.

    The path is centred on the canvas: x0 = (R - S - span_x) // 2. Pixels outside the image are
    the background; `dx`/`dy` are the image's displacement in px, `size` is S.
    """

    sized = True

    def __init__(self, preprocessing, options, size: int):
        super().__init__(preprocessing, options)
        self.size = int(size)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.size}"

    def params(self) -> dict:
        return {**super().params(), "size": self.size}

    def source(self) -> SourceRequest:
        return SourceRequest("square", self.size)

    def view_params(self) -> list[ViewParams]:
        span_x, span_y = path_span(self.options.path, self.options.steps)
        if self.size < 8:
            raise ArgumentError(f"--size {self.size} is too small; use at least 8 px")
        span, r = max(span_x, span_y), self.input_size
        if r - span < 8:  # no image size fits: the steps are the problem, not --size
            raise ArgumentError(
                f"{self.options.steps} steps along '{self.options.path}' move the image "
                f"{span} px, too far for the {r} px canvas; use --steps at most {r - 7}"
            )
        if self.size + max(span_x, span_y) > self.input_size:
            raise ArgumentError(
                f"--size {self.size} with {self.options.steps} steps along '{self.options.path}' "
                f"does not fit the {self.input_size} px canvas; use --size at most "
                f"{self.input_size - max(span_x, span_y)}"
            )
        return [
            ViewParams(dx, dy, self.size)
            for dx, dy in path_offsets(self.options.path, self.options.steps)
        ]

    def _origin(self) -> tuple[int, int]:
        span_x, span_y = path_span(self.options.path, self.options.steps)
        r = self.input_size
        return (r - self.size - span_x) // 2, (r - self.size - span_y) // 2

    def background(self, source: torch.Tensor) -> torch.Tensor:
        """Per-channel background value [3, 1, 1] (normalised)."""
        raise NotImplementedError

    def paste(self, source: torch.Tensor, indices: range) -> tuple[torch.Tensor, torch.Tensor]:
        """Canvases [V, 3, R, R] filled with the background, and masks [V, 1, R, R] of the
        image pixels."""
        r, s = self.input_size, self.size
        x0, y0 = self._origin()
        params = self.view_params()
        n = len(indices)
        canvas = self.background(source).to(source.dtype).expand(n, 3, r, r).clone()
        mask = torch.zeros(n, 1, r, r, device=source.device, dtype=source.dtype)
        for i, k in enumerate(indices):
            x, y = x0 + int(params[k].dx), y0 + int(params[k].dy)
            canvas[i, :, y : y + s, x : x + s] = source
            mask[i, :, y : y + s, x : x + s] = 1.0
        return canvas, mask

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        return self.paste(source, indices)[0]


@register_protocol
class BlackProtocol(EmbedProtocol):
    name = "black"
    description = "image of side S moved 1 px per view on a black canvas"

    def background(self, source):
        return torch.tensor(self.preprocessing.black_value(), device=source.device).view(3, 1, 1)


@register_protocol
class MeanProtocol(EmbedProtocol):
    name = "mean"
    description = "as black, on the model's mean colour (zero after normalisation)"

    def background(self, source):
        return torch.zeros(3, 1, 1, device=source.device)


@register_protocol
class InpaintProtocol(EmbedProtocol):
    name = "inpaint"
    description = "as black, background filled from the image by repeated binomial blurring"

    def background(self, source):
        return torch.zeros(3, 1, 1, device=source.device)

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        canvas, mask = self.paste(source, indices)
        return inpaint(canvas, mask)


def binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial blur of [N, C, H, W] with zero padding."""
    c = x.shape[1]
    k = _BINOMIAL5.to(device=x.device, dtype=x.dtype)
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), padding=(0, 2), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), padding=(2, 0), groups=c)


def inpaint(canvas: torch.Tensor, mask: torch.Tensor, max_iterations: int = 10_000) -> torch.Tensor:
    """Fill the pixels where `mask` is 0 from the known ones by repeated normalised blurring.

    Each iteration blurs (image * mask) and the mask with a binomial filter; every unknown pixel
    the blurred mask reaches takes blurred_image / blurred_mask and becomes known. Known pixels
    never change. Repeats until no pixel is unknown (the study's inpainting, vectorised over
    views and channels).

    Args:
        canvas: [N, C, H, W] images; values where mask == 0 are ignored.
        mask: [N, 1, H, W], 1 on known pixels.
    """
    known = mask > 0
    image = torch.where(known, canvas, torch.zeros_like(canvas))
    weight = known.to(canvas.dtype)
    for _ in range(max_iterations):
        if bool(known.all()):
            break
        blurred = binomial_blur(image)
        blurred_weight = binomial_blur(weight)
        reached = (~known) & (blurred_weight > 1e-6)
        fill = blurred / blurred_weight.clamp_min(1e-6)
        image = torch.where(reached, fill, image)
        known = known | reached
        weight = known.to(canvas.dtype)
    return image
