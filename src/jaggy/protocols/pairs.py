"""Random view pairs as the consistency papers draw them: `zhang` and `aps_roll`.

Their `consistency` is the papers' number: the fraction of pairs whose top-1 classes agree.

- `zhang` (Zhang, ICML 2019, antialiased-cnns `main.py --evaluate-shift`): the image's shorter
  side resized to 256 and its 256 x 256 centre crop; each pair is two independent 224 x 224
  windows of it, top-left offsets (oy, ox) uniform in [0, 32)^2.
- `aps_roll` (Chaman & Dokmanić, CVPR 2021, truly_shift_invariant_cnns `main.py`): the standard
  input (shorter side to 256, centre crop 224); each pair is two circular shifts of it
  (`torch.roll`), (dy, dx) uniform in [-32, 32)^2.

For an input size R other than 224 the geometry scales: zhang crops a centre square of
round(R * 256 / 224) px and aps_roll shifts by up to round(32 * R / 224) px. Each image gets K
pairs (`--consistency-pairs`, `ProtocolOptions.pairs`), drawn from a generator seeded by
(`--seed`, the image's id, the protocol), so a view depends only on the image and the seed;
the papers draw their offsets from NumPy's global generator, so only their distribution is
reproducible. View 2i and view 2i + 1 form pair i; pair metrics compare only those.

Conventions: shifts in pixels of the model input; `dx` moves content right. A zhang window at
offset ox shows the content moved by dx = margin // 2 - ox relative to the centre window.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from ..errors import ArgumentError
from ._base import Protocol, SourceRequest, ViewParams
from ._registry import register_protocol

ZHANG_CROP = 256  # at a 224 input: Resize(256), CenterCrop(256), windows of 224
APS_SHIFT = 32  # at a 224 input: rolls in [-32, 32)


class _RandomPairs(Protocol):
    """K pairs of views per image, drawn per image (see `for_image`)."""

    pairing = "disjoint"

    def __init__(self, preprocessing, options, image_id: str | None = None):
        super().__init__(preprocessing, options)
        if options.pairs < 1:
            raise ArgumentError("--consistency-pairs must be at least 1")
        self.image_id = image_id
        key = [int(options.seed), zlib.crc32(self.name.encode())]
        if image_id is not None:
            key.append(zlib.crc32(image_id.encode()))
        # [K, 2, 2]: pair, member, (y, x)
        self.draws = self._draw(np.random.default_rng(key), int(options.pairs))

    def for_image(self, image_id: str) -> Protocol:
        return type(self)(self.preprocessing, self.options, image_id)

    def params(self) -> dict:
        return {
            **super().params(),
            "path": None,
            "steps": None,
            "pairs": int(self.options.pairs),
            "seed": int(self.options.seed),
        }

    def _draw(self, rng: np.random.Generator, pairs: int) -> np.ndarray:
        raise NotImplementedError

    def _members(self):
        """(pair, member) offsets in view order: view 2i + m is member m of pair i."""
        return self.draws.reshape(-1, 2)


@register_protocol
class ZhangProtocol(_RandomPairs):
    name = "zhang"
    description = "Zhang's consistency: pairs of R x R windows of a 256/224 R centre crop"

    @property
    def side(self) -> int:
        return round(self.input_size * ZHANG_CROP / 224)

    @property
    def margin(self) -> int:
        return self.side - self.input_size

    def params(self) -> dict:
        return {**super().params(), "crop": self.side, "offsets": [0, self.margin]}

    def _draw(self, rng, pairs):
        if self.margin < 1:
            raise ArgumentError(f"zhang: a {self.input_size} px input leaves no room to shift")
        return rng.integers(0, self.margin, size=(pairs, 2, 2))

    def source(self) -> SourceRequest:
        return SourceRequest("short_side", self.side, full_decode=True)

    def view_params(self) -> list[ViewParams]:
        c = self.margin // 2
        return [ViewParams(c - int(ox), c - int(oy), self.input_size) for oy, ox in self._members()]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        r, members = self.input_size, self._members()
        windows = []
        for k in indices:
            oy, ox = (int(v) for v in members[k])
            windows.append(source[:, oy : oy + r, ox : ox + r])
        return torch.stack(windows)


@register_protocol
class ApsRollProtocol(_RandomPairs):
    name = "aps_roll"
    description = "APS's circular consistency: pairs of rolls of the standard input"

    @property
    def max_shift(self) -> int:
        return round(APS_SHIFT * self.input_size / 224)

    def params(self) -> dict:
        return {**super().params(), "shifts": [-self.max_shift, self.max_shift]}

    def _draw(self, rng, pairs):
        if self.max_shift < 1:
            raise ArgumentError(f"aps_roll: a {self.input_size} px input leaves no room to roll")
        return rng.integers(-self.max_shift, self.max_shift, size=(pairs, 2, 2))

    def source(self) -> SourceRequest:
        return SourceRequest("standard", self.input_size, full_decode=True)

    def view_params(self) -> list[ViewParams]:
        return [ViewParams(int(dx), int(dy), self.input_size) for dy, dx in self._members()]

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        members = self._members()
        return torch.stack(
            [
                torch.roll(source, shifts=(int(members[k][0]), int(members[k][1])), dims=(-2, -1))
                for k in indices
            ]
        )
