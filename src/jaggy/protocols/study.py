"""The study's own protocols, as its code ran them: `study_crop` and `study_black`.

Azulay & Weiss (JMLR 2019) measured Table 1 with `CheckTranslationInvariance.py`: torchvision's
ImageFolder loads each image with PIL at full resolution, `RandomResizedCrop(side, scale=(1,
1))` squashes it to side x side with PIL's bilinear filter, and `ToTensor` + `Normalize` give the
input. Then, for c = centre - 4 .. centre + 3, the pair (view at c, view at c + 1) is scored:
8 diagonal pairs, 9 distinct views, each view one pixel right of and below the previous one.

- Crop: side = 234 (R + 10), view c is the window [c : c + R, c : c + R] of the squashed image,
  centre = int((234 - 224 - 1) / 2) = 4, so c = 0 .. 8.
- Black: side = S, the image is pasted at [c : c + S, c : c + S] of an R x R canvas of zeros
  *after* normalisation (the model's mean colour, not black pixels), centre =
  int((224 - S - 1) / 2). The study's sizes are int(224 / s) for s = 1.3, 1.6, 1.9: 172, 140
  and 117 (its `np.arange(0.1, 2.1, 0.3)` holds 1.6000000000000003, which gives 139 for the
  middle size; pass `--size 139` for that).

With `scale=(1, 1)` RandomResizedCrop's random search keeps the whole image only when a random
aspect ratio happens to round back to the image's own, so it nearly always falls back to its
deterministic central crop: the whole image for aspect ratios in [3/4, 4/3], else the centre
crop of the full shorter side at 3:4 or 4:3. jaggy takes that fallback for every image (the rare
random hit crops at most a pixel less, at a random place). The views then equal a plain
transcription of the study's loop exactly (tests/protocols/test_study_protocols.py), and so do
P(top-1 change) and MAC over the 8 pairs; jaggy's `accuracy` counts all 9 views, where the
study's counted the first view of each pair.

Conventions: as `crop`, a window that moves right and down moves the content left and up, so
study_crop's view k has dx = dy = -k; study_black's image moves right and down, dx = dy = k.
`--path` and `--steps` do not apply: the study's path is fixed.
"""

from __future__ import annotations

import torch

from ..errors import ArgumentError
from ._base import Protocol, SizedProtocol, SourceRequest, ViewParams
from ._registry import register_protocol

PAIRS = 8  # the study's pairs per image: c = centre - 4 .. centre + 3
CROP_MARGIN = 10  # the study's crop protocol squashes to 234 = 224 + 10
STUDY_SCALES = (1.3, 1.6, 1.9)  # embedded size = int(R / s)


class _StudyProtocol(Protocol):
    """The study's fixed diagonal path of PAIRS + 1 views starting at `first` (c = first + k)."""

    def params(self) -> dict:
        return {**super().params(), "path": "diagonal", "steps": PAIRS + 1}

    def _first(self, space: int) -> int:
        """The first position c of the study's loop for `space` px of room (L - R or R - S)."""
        return int((space - 1) / 2) - 4


@register_protocol
class StudyCropProtocol(_StudyProtocol):
    name = "study_crop"
    description = "the study's Crop: R x R windows of the image squashed to R + 10, 8 pairs"

    @property
    def side(self) -> int:
        return self.input_size + CROP_MARGIN

    def source(self) -> SourceRequest:
        return SourceRequest("study", self.side, full_decode=True)

    def view_params(self) -> list[ViewParams]:
        return [ViewParams(-k, -k, self.input_size) for k in range(PAIRS + 1)]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        r, first = self.input_size, self._first(self.side - self.input_size)
        return torch.stack(
            [source[:, first + k : first + k + r, first + k : first + k + r] for k in indices]
        )


@register_protocol
class StudyBlackProtocol(SizedProtocol, _StudyProtocol):
    name = "study_black"
    description = "the study's Black: image squashed to S on zeros after normalisation, 8 pairs"

    @classmethod
    def sizes_for(cls, preprocessing, options) -> tuple[int, ...]:
        """The run's `--size` values, else the study's int(R / s) for s = 1.3, 1.6, 1.9."""
        if options.sizes:
            return tuple(options.sizes)
        return tuple(int(preprocessing.input_size / s) for s in STUDY_SCALES)

    def source(self) -> SourceRequest:
        return SourceRequest("study", self.size, full_decode=True)

    def view_params(self) -> list[ViewParams]:
        first = self._first(self.input_size - self.size)
        if self.size < 8 or first < 0 or first + PAIRS + self.size > self.input_size:
            raise ArgumentError(
                f"study_black: --size {self.size} does not leave the study's 9 positions on "
                f"the {self.input_size} px canvas; use --size from 8 to {self.input_size - 9}"
            )
        return [ViewParams(k, k, self.size) for k in range(PAIRS + 1)]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        r, s = self.input_size, self.size
        first = self._first(r - s)
        views = torch.zeros(len(indices), 3, r, r, dtype=source.dtype, device=source.device)
        for i, k in enumerate(indices):
            c = first + k
            views[i, :, c : c + s, c : c + s] = source
        return views
