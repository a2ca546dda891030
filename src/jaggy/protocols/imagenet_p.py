"""ImageNet-P-style perturbation sequences, generated on the device from one still image.

ImageNet-P (Hendrycks & Dietterich, ICLR 2019) turns each validation image into a short
sequence of gradually perturbed frames. Its generator (`make_imagenet_p.py`) resizes the
image's shorter side to 256 px, perturbs the whole resized image, and centre-crops 224 px.
jaggy follows that geometry scaled to the model's input size R: shorter side
S = round(256 R / 224) (bilinear, no crop: the worker's 'short' source), perturbation of the
whole image, centre crop R x R at torchvision's CenterCrop offsets. Pixels that the
perturbation brings in from outside the image are black, as there. Every frame is rounded to
the 8-bit grid, as ImageNet-P's PNG frames are; the official sequences were then x264-encoded
(crf 20), which generated frames skip, so numbers from these protocols are "ImageNet-P-style".
Reading the official mp4 files through the `video` protocol gives the comparable numbers.

Frame k of each sequence (units: px of the model input, degrees, fractions):

| name | frames | frame k |
| --- | --- | --- |
| `translate` | 41 | content moved right by round((k - 20) R / 224) px (nearest: whole pixels) |
| `rotate` | 31 | rotated clockwise by k - 15 degrees about the image centre (bilinear) |
| `tilt` | 31 | perspective view of the image plane turned by k - 15 degrees about both axes |
| `rescale` | 31 | scaled by (40 + 2.5 k) / 100 about the image centre (bilinear) |
| `brightness` | 31 | HSV value + (k - 15) / 50, clipped to 0..1 (the crop only) |

Coordinates: pixel indices (x right, y down; pixel centres at integers). A frame is made by
mapping every output pixel (u, v) of the crop back to the source with a 3 x 3 matrix and
sampling bilinearly (`grid_sample`, align_corners=True, black outside). `rescale` is ImageNet-P's
`scale`, named apart from jaggy's 1-px `scale` protocol.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ._base import Protocol, SourceRequest, ViewParams
from ._registry import register_protocol

IMAGENET_P_SHORT_SIDE = 256  # px, make_imagenet_p.py's Resize(256)
IMAGENET_P_CROP = 224  # px, its CenterCrop(224)
STYLE = "ImageNet-P-style"


def imagenet_p_short_side(input_size: int) -> int:
    """The shorter side the still is resized to before it is perturbed, for input size R."""
    return round(IMAGENET_P_SHORT_SIDE * input_size / IMAGENET_P_CROP)


def center_crop_offsets(width: int, height: int, size: int) -> tuple[int, int]:
    """(left, top) of torchvision's CenterCrop(size) of a width x height image."""
    return int(round((width - size) / 2.0)), int(round((height - size) / 2.0))


class _ImageNetPProtocol(Protocol):
    """Shared by the five sequences: the source, the crop, the frame count, quantisation."""

    n_frames = 31
    parameter = ""  # name of the per-frame parameter in the manifest
    imagenet_p_style = True

    def source(self) -> SourceRequest:
        return SourceRequest("short", imagenet_p_short_side(self.input_size))

    def frame_values(self) -> list[float]:
        raise NotImplementedError

    def view_params(self) -> list[ViewParams]:
        return [ViewParams() for _ in range(self.n_frames)]

    def params(self) -> dict:
        return {
            **super().params(),
            "path": None,
            "steps": self.n_frames,
            "style": STYLE,
            "short_side": self.source().side,
            self.parameter: self.frame_values(),
        }

    def _quantise(self, frames: torch.Tensor, rounding=torch.round) -> torch.Tensor:
        """Normalised frames -> the nearest 8-bit colours (as the saved PNG frames)."""
        pixels = rounding((self.preprocessing.to_pixels(frames) * 255.0).clamp(0, 255))
        mean, std = self.preprocessing.stats_like(frames)
        return (pixels / 255.0 - mean) / std


class _WarpProtocol(_ImageNetPProtocol):
    """Frames made by sampling the whole source through one matrix per frame."""

    def source_matrix(self, k: int, width: int, height: int) -> np.ndarray:
        """3 x 3 matrix: full-image output pixel (x, y, 1) -> source pixel (homogeneous)."""
        raise NotImplementedError

    def crop_matrices(self, indices: range, width: int, height: int) -> np.ndarray:
        """[n, 3, 3]: crop pixel (u, v, 1) -> source pixel, for frames `indices`."""
        left, top = center_crop_offsets(width, height, self.input_size)
        to_full = np.array([[1.0, 0, left], [0, 1.0, top], [0, 0, 1.0]])
        return np.stack([self.source_matrix(k, width, height) @ to_full for k in indices])

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        _, height, width = source.shape
        r = self.input_size
        matrices = torch.from_numpy(self.crop_matrices(indices, width, height))
        v, u = torch.meshgrid(
            torch.arange(r, dtype=torch.float64),
            torch.arange(r, dtype=torch.float64),
            indexing="ij",
        )
        points = torch.stack([u, v, torch.ones_like(u)], dim=-1).reshape(-1, 3)  # [R*R, 3]
        mapped = torch.einsum("nij,pj->npi", matrices, points)
        x = mapped[..., 0] / mapped[..., 2]
        y = mapped[..., 1] / mapped[..., 2]
        grid = torch.stack(
            [2.0 * x / max(width - 1, 1) - 1.0, 2.0 * y / max(height - 1, 1) - 1.0], dim=-1
        ).reshape(len(indices), r, r, 2)
        black = torch.tensor(
            self.preprocessing.black_value(), device=source.device, dtype=source.dtype
        ).view(1, 3, 1, 1)
        # Sampling source - black with zero padding and adding black back fills with black.
        shifted = (source[None] - black).expand(len(indices), -1, -1, -1)
        frames = F.grid_sample(
            shifted,
            grid.to(device=source.device, dtype=source.dtype),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )
        return self._quantise(frames + black)


def _about_centre(linear: np.ndarray, width: int, height: int) -> np.ndarray:
    """The 3 x 3 matrix applying the 2 x 2 `linear` map about the image centre."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    move = np.array([[1.0, 0, cx], [0, 1.0, cy], [0, 0, 1.0]])
    back = np.array([[1.0, 0, -cx], [0, 1.0, -cy], [0, 0, 1.0]])
    full = np.eye(3)
    full[:2, :2] = linear
    return move @ full @ back


@register_protocol
class TranslateProtocol(_ImageNetPProtocol):
    """ImageNet-P's `translate`: 41 frames, the content moved horizontally by k - 20 px (at
    R = 224; round((k - 20) R / 224) px otherwise), black where the image ends. `dx` of frame
    k is that shift (content moves right for dx > 0)."""

    name = "translate"
    description = f"{STYLE}: 41 frames, content moved -20..+20 px horizontally (scaled to R)"
    n_frames = 41
    parameter = "shift_px"

    def frame_values(self) -> list[float]:
        scale = self.input_size / IMAGENET_P_CROP
        return [float(round((k - 20) * scale)) for k in range(self.n_frames)]

    def view_params(self) -> list[ViewParams]:
        return [ViewParams(dx=t) for t in self.frame_values()]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        # Whole-pixel moves, so the frames are slices of the source padded with black.
        _, height, width = source.shape
        r = self.input_size
        shifts = [int(t) for t in self.frame_values()]
        margin = max(abs(t) for t in shifts)
        black = torch.tensor(
            self.preprocessing.black_value(), device=source.device, dtype=source.dtype
        ).view(3, 1, 1)
        padded = black.expand(3, height, width + 2 * margin).clone()
        padded[:, :, margin : margin + width] = source
        left, top = center_crop_offsets(width, height, r)
        frames = [
            padded[:, top : top + r, margin + left - shifts[k] : margin + left - shifts[k] + r]
            for k in indices
        ]
        return self._quantise(torch.stack(frames))


@register_protocol
class RotateProtocol(_WarpProtocol):
    """ImageNet-P's `rotate`: 31 frames rotated clockwise (on screen, y down) by k - 15
    degrees about the image centre, bilinear."""

    name = "rotate"
    description = f"{STYLE}: 31 frames rotated -15..+15 degrees about the image centre"
    parameter = "angle_deg"

    def frame_values(self) -> list[float]:
        return [float(k - 15) for k in range(self.n_frames)]

    def source_matrix(self, k: int, width: int, height: int) -> np.ndarray:
        a = math.radians(self.frame_values()[k])
        # Output pixel -> source pixel: the inverse (counter-clockwise) rotation.
        inverse = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        return _about_centre(inverse, width, height)


@register_protocol
class RescaleProtocol(_WarpProtocol):
    """ImageNet-P's `scale` (named apart from jaggy's 1-px `scale`): 31 frames scaled by
    (40 + 2.5 k) / 100, i.e. 0.40 .. 1.15, about the image centre, bilinear."""

    name = "rescale"
    description = f"{STYLE}: 31 frames scaled 0.40..1.15 about the image centre"
    parameter = "scale"

    def frame_values(self) -> list[float]:
        return [(40.0 + 2.5 * k) / 100.0 for k in range(self.n_frames)]

    def source_matrix(self, k: int, width: int, height: int) -> np.ndarray:
        s = self.frame_values()[k]
        return _about_centre(np.eye(2) / s, width, height)


@register_protocol
class TiltProtocol(_WarpProtocol):
    """ImageNet-P's `tilt`: 31 perspective views of the image plane, turned by
    phi = theta = k - 15 degrees about the vertical and the horizontal axis.

    The image (w x h px, its centre at pixel (w / 2, h / 2) as in make_imagenet_p.py) lies in
    the plane z = 1 of a camera with focal length f = sqrt(w^2 + h^2) px, moved f further
    away; it is turned about the y axis by phi, then about the x axis by theta, and projected
    back to pixels. Even at 0 degrees this shrinks the image by f / (f + 1), as there.
    """

    name = "tilt"
    description = f"{STYLE}: 31 perspective views, -15..+15 degrees about both axes"
    parameter = "angle_deg"

    def frame_values(self) -> list[float]:
        return [float(k - 15) for k in range(self.n_frames)]

    def forward_matrix(self, k: int, width: int, height: int) -> np.ndarray:
        """3 x 3 matrix: source pixel -> output pixel (homogeneous)."""
        angle = math.radians(self.frame_values()[k])
        c, s = math.cos(angle), math.sin(angle)
        f = math.hypot(width, height)
        # source pixel (x, y) -> 3-d point (x - w/2, y - h/2, 1) on the image plane
        lift = np.array([[1.0, 0, -width / 2], [0, 1.0, -height / 2], [0, 0, 1.0]])
        turn_y = np.array([[c, 0, -s], [0, 1.0, 0], [s, 0, c]])  # phi about the y axis
        turn_x = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])  # theta about the x axis
        project = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
        # turn, then move the plane f away: z + f times the point's homogeneous coordinate
        point = turn_x @ turn_y @ lift + np.outer([0, 0, f], [0, 0, 1.0])
        return project @ point

    def source_matrix(self, k: int, width: int, height: int) -> np.ndarray:
        return np.linalg.inv(self.forward_matrix(k, width, height))


@register_protocol
class BrightnessProtocol(_ImageNetPProtocol):
    """ImageNet-P's `brightness`: 31 frames of the centre crop with the HSV value shifted by
    c = (k - 15) / 50 (-0.30 .. +0.30) and clipped to 0..1, hue and saturation kept.

    With hue and saturation fixed, RGB is proportional to the value V = max(R, G, B), so each
    pixel is scaled by clip(V + c, 0, 1) / V (a black pixel becomes grey clip(c, 0, 1)). The
    result is truncated to 8 bits, as ImageNet-P's np.uint8(x * 255) does.
    """

    name = "brightness"
    description = f"{STYLE}: 31 frames with the HSV value shifted by -0.30..+0.30"
    parameter = "value_shift"

    def frame_values(self) -> list[float]:
        return [(k - 15) * 2 / 100.0 for k in range(self.n_frames)]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        _, height, width = source.shape
        r = self.input_size
        left, top = center_crop_offsets(width, height, r)
        rgb = self.preprocessing.to_pixels(source[:, top : top + r, left : left + r]).clamp(0, 1)
        rgb = torch.round(rgb * 255.0) / 255.0  # the 8-bit crop the perturbation starts from
        value = rgb.amax(dim=0, keepdim=True)
        shifts = torch.tensor(
            [self.frame_values()[k] for k in indices], device=source.device, dtype=source.dtype
        ).view(-1, 1, 1, 1)
        new_value = (value[None] + shifts).clamp(0, 1)
        ratio = torch.where(value[None] > 0, new_value / value[None].clamp_min(1e-12), 0.0)
        frames = torch.where(value[None] > 0, rgb[None] * ratio, new_value.expand(-1, 3, -1, -1))
        # a hair above the exact product keeps float error from truncating 254.99.. to 254
        pixels = torch.floor(frames * 255.0 + 1e-4).clamp(0, 255)
        mean, std = self.preprocessing.stats_like(source)
        return (pixels / 255.0 - mean) / std
