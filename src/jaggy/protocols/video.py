"""`video`: the consecutive frames of a video or of a folder of frames (natural perturbations).

Each frame is one view: the model's standard input of that frame (shorter side resized to
floor(R / crop_pct), centre crop R), prepared once per frame by the data workers; a frame that
already is R x R is the model input as it is, as ImageNet-P's test.py feeds its 224 x 224
frames (so the official ImageNet-P files give ImageNet-P's numbers). View k is
frame start + k * stride of the sequence (`--start`, `--frame-stride`; at most `--max-frames`
views), so the pair metrics between consecutive views are the study's natural-perturbation
numbers, and the ImageNet-P metrics apply as they do to ImageNet-P's own mp4 files.
"""

from __future__ import annotations

import torch

from ._base import Protocol, SourceRequest, ViewParams
from ._registry import register_protocol

NOMINAL_FRAMES = 32  # views per sequence assumed before a sequence is read (progress, probing)


@register_protocol
class VideoProtocol(Protocol):
    """One view per frame; the number of views is the sequence's own (`view_params_for`)."""

    name = "video"
    description = "consecutive frames of a video or a folder of frames (natural perturbations)"
    reads_sequences = True

    def source(self) -> SourceRequest:
        return SourceRequest("frames", self.input_size)

    def params(self) -> dict:
        frames = self.options.frame_selection()
        return {
            **super().params(),
            "path": None,
            "steps": None,
            "start": frames["start"],
            "frame_stride": frames["stride"],
            "max_frames": frames["max_frames"],
        }

    def view_params(self) -> list[ViewParams]:
        """A nominal sequence (the --max-frames views, else NOMINAL_FRAMES): each sequence's
        own frame count is known only once it is read (see `view_params_for`)."""
        n = self.options.extra.get("max_frames") or NOMINAL_FRAMES
        return [ViewParams() for _ in range(int(n))]

    def view_params_for(self, source: torch.Tensor) -> list[ViewParams]:
        return [ViewParams() for _ in range(int(source.shape[0]))]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        """Frames `indices` of the normalised frames [V, 3, R, R] (a slice, no copy)."""
        return source[indices.start : indices.stop]
