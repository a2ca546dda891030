"""Embed protocols: a square image downscaled to S and pasted into an R x R canvas, moved
1 px per view. Backgrounds: `black`, `mean` (zero after normalisation) and `inpaint`."""

from __future__ import annotations

import torch

from ..errors import ArgumentError
from . import _inpaint
from ._base import SizedProtocol, SourceRequest, ViewParams
from ._paths import path_offsets, path_span
from ._registry import register_protocol

# The study's inpainting (InpaintingFunction.py, Azulay & Weiss 2019): [0.5, 0.5] convolved
# with itself 10 times, the 12-tap binomial C(11, k) / 2048; at most 80 rounds, stopping once
# 200 or fewer pixels are still zero.
INPAINT_TAPS = torch.tensor(_inpaint.TAPS, dtype=torch.float64)
INPAINT_MAX_ROUNDS = _inpaint.MAX_ROUNDS
INPAINT_ZEROS_LEFT = _inpaint.ZEROS_LEFT


class EmbedProtocol(SizedProtocol):
    """Base of the embed protocols: image of side S at (x0 + dx, y0 + dy) on the canvas.

    The path is centred on the canvas: x0 = (R - S - span_x) // 2. Pixels outside the image are
    the background; `dx`/`dy` are the image's displacement in px, `size` is S.
    """

    @classmethod
    def sizes_for(cls, preprocessing, options) -> tuple[int, ...]:
        """The sizes S of one instance each: the run's `--size` values."""
        return options.embed_sizes(preprocessing.input_size)

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
    """As `black`, the background filled by the study's inpainting (see `inpaint`).

    The study inpaints in pixel values (0..255, black = 0), so the normalised source is mapped
    back to its 8-bit values (exact: the source is an 8-bit image), pasted on black, inpainted
    in float64 and normalised again."""

    name = "inpaint"
    description = "as black, background filled by the study's inpainting"

    def background(self, source):
        return torch.zeros(3, 1, 1, device=source.device)

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        prep = self.preprocessing
        work = torch.float32 if source.device.type == "mps" else torch.float64
        pixels = (prep.to_pixels(source) * 255).round().clamp(0, 255).to(work)
        x0, y0 = self._origin()
        params = self.view_params()
        origins = [(x0 + int(params[k].dx), y0 + int(params[k].dy)) for k in indices]
        r = self.input_size
        views = _inpaint.inpaint_pasted(pixels, origins, r, r, source.dtype)
        if views.dtype != torch.float32:
            return prep.normalize(views / 255.0)
        # prep.normalize(views / 255), in place: the same operations, no new tensors
        mean, std = prep.stats_like(views)
        return views.div_(255.0).sub_(mean).div_(std)


def inpaint(canvas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The study's inpainting (InpaintingFunction.py) of each view.

    One round: blur (image * mask) and the mask with the separable 12-tap binomial, rows then
    columns, each as scipy's `convolve2d(..., 'same')` (zero outside the canvas; the window of
    an even filter spans 6 px before and 5 after); every pixel outside the mask takes
    blurred_image / blurred_mask (0 where the blurred mask is 0), pixels inside keep their
    value. The first round's mask is the pasted image; after each round the mask is every
    pixel whose channels do not sum to zero. Rounds repeat while more than 200 pixels sum to
    zero, at most 80 times, so a few far corner pixels may stay black, and black pixels of the
    image itself are filled from round two on, as in the study. Each round is computed only
    where it can change a pixel, with the same arithmetic as over the whole canvas
    (`protocols/_inpaint.py`).

    Args:
        canvas: [N, C, H, W] pixel values (0..255, black = 0) on a black background.
        mask: [N, 1, H, W], 1 on the pasted image, 0 elsewhere.

    Returns:
        The inpainted canvases [N, C, H, W], same dtype.

    Raises:
        ValueError: the mask holds values other than 0 and 1.
    """
    return _inpaint.inpaint(canvas, mask)
