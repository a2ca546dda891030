"""Worst-case sets (`--worst-case KIND`, key `worst@KIND`): is the answer kept at every
transformation of a set?

An image is *robust* on a set when the model is right (labelled) or keeps c* (unlabelled: the
top-1 class of the untransformed input) at every view of it. View 0 of every set is the
untransformed input, so c* is known before any transformed view; the other views follow in
order of growing transformation (|shift|; on `grid` and `randomK` a combined key of |shift|
and |angle|), so on the sets of shifts the first failing view is the smallest shift that
changes the answer, and on `grid` and `randomK` it is the first failing view in the set's
order. The engine stops an image's search at its first failing batch of views unless
`--exhaustive` keeps every view; `randomK` always keeps every view (K + 1), for
`worst_of_k_accuracy`.

| KIND | views (input size R) | after |
| --- | --- | --- |
| `circular` | the standard input and its `torch.roll` by every (dx, dy) in (1..31)^2 (961 shifts; taken modulo R when R < 32, each distinct roll once; a roll past R / 2 is recorded as the equal roll by dx - R) | AFC `evaluate_full_adversarial_shift_metrics` |
| `crop` | the shorter side resized to 256 R / 224, centre crop R + 2M, M = 16 R / 224 px: the centre window and every window at offsets (1..2M)^2 (M = 16 and the 256 R / 224 scaling are jaggy's choices: AFC's `--eval_crop_shift` has no default, and is used as CenterCrop(224 + 2 shift) after Resize(256)) | AFC `evaluate_adversarial_crop_shift_metrics` |
| `fourier` | the standard input and its band-limited shifts by -(i/u, j/u) px, u in {3, 4}, i, j in 1..u-1 (13 fractional shifts); AFC's `subpixel_shift` equals it when 4 divides R (elsewhere its Nyquist handling and irfft2 without `s=` change some views: at R = 30 the thirds) | AFC `evaluate_fraction_adversarial_shift_metrics`, max_up 4 |
| `grid` | rotations -30..30 deg in 31 steps x translations -t, -t/2, 0, t/2, t per axis, t = 3 R / 28 px (24 px at 224), 775 views | Engstrom et al. 2019, attack_type 'grid' |
| `randomK` (`random10`) | the standard input and K draws of a rotation uniform in [-30, 30] deg and a translation uniform in [-t, t]^2 | Engstrom et al. 2019, worst-of-10 |

Sources: AFC is Michaeli, Michaeli & Soudry, "Alias-Free Convnets: Fractional Shift
Invariance via Polynomial Activations", CVPR 2023 (github.com/hmichaeli/alias_free_convnets,
`shift_eval.py`); Engstrom, Tran, Tsipras, Schmidt & Madry, "Exploring the Landscape of Spatial
Robustness", ICML 2019 (their `spatial-pytorch`: `attack_steps.Spatial`, `spatial.transform`;
spatial constraint 30: 30 deg, translations of (30 / 10) / 28 of the image side).

Conventions: shifts in px of the model input, (dx, dy) order; dx > 0 moves content right,
dy > 0 moves it down. A rotation+translation view samples the input at R(angle) p - (dx, dy)
for every output pixel p (px from the image centre, x right, y down), bilinearly, with black
outside (black pixels, not zeros after normalisation; Engstrom transformed [0, 1] images): at
angle 0 the content moves by (dx, dy), and a positive angle turns it counter-clockwise on the
screen. Engstrom's sets are symmetric under t -> -t, so the sets are theirs; they sampled the
grid of `linspace(-1, 1, R)` with `grid_sample` without `align_corners`, whose meaning depends
on the torch version: before 1.3 identity sampling (a translation of 3 (R - 1) / 28 px), from
1.3 a zoom by R / (R - 1) (a translation of 24 px at 224); jaggy samples with pixel-exact
coordinates (align_corners=False: a 12 px translation moves the content by exactly 12 px).
AFC's robust score counts an image as right only when its label is the top-1 class at every
view. Engstrom's accuracies score one view per image: worst-of-K the view of highest loss
(the clean input, replaced by each draw of higher cross-entropy loss), which is
`worst_of_k_accuracy`; grid the first misclassified view in (rotation, tx, ty) order, kept only
when its loss is above the clean input's. jaggy's `robust_accuracy` ("right at every view")
gives the same or fewer right images than either.
"""

from __future__ import annotations

import math
import re
import zlib

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ArgumentError
from ._base import Protocol, ProtocolOptions, SourceRequest, ViewParams
from ._registry import register_protocol
from .fourier import fourier_shift_phases

KINDS = ("circular", "crop", "fourier", "grid", "random10")
AFC_WINDOW = 32  # circular: rolls by 1..31 px per axis
AFC_CROP_RESIZE = 256  # crop: Resize(256) at a 224 input (scaled with R: jaggy's choice)
AFC_CROP_SHIFT = 16  # crop: max_shift M at a 224 input (jaggy's choice; AFC has no default)
AFC_MAX_UP = 4  # fourier: fractional shifts k / u for u up to 4
ENGSTROM_ROTATION = 30.0  # degrees
ENGSTROM_TRANSLATION = 3 / 28  # of the image side: (spatial constraint 30 / 10) / 28
ENGSTROM_ROTATIONS = 31
ENGSTROM_TRANSLATIONS = 5
_RANDOM = re.compile(r"random([1-9][0-9]*)$")


def check_worst_kinds(kinds) -> list[str]:
    """The kinds asked for, checked (before any work): known, each once."""
    kinds = list(kinds or [])
    for kind in kinds:
        if kind not in KINDS and not _RANDOM.match(str(kind)):
            raise ArgumentError(
                f"unknown --worst-case '{kind}'; choose from {', '.join(KINDS)} "
                "(or randomK for K random draws, e.g. random20)"
            )
    twice = sorted({k for k in kinds if kinds.count(k) > 1})
    if twice:
        raise ArgumentError(f"--worst-case asked for twice: {', '.join(twice)}")
    return kinds


def _by_size(params: list[ViewParams], angle_scale: float = 1.0) -> list[ViewParams]:
    """The untransformed view first, then the others by growing transformation: |shift|
    (in units of `angle_scale` px per degree when rotations are mixed in), ties in a fixed
    order."""
    clean, others = params[0], params[1:]
    key = [
        (
            math.hypot(p.dx, p.dy) ** 2 + (p.angle * angle_scale) ** 2,
            abs(p.angle),
            p.dy,
            p.dx,
            p.angle,
        )
        for p in others
    ]
    order = sorted(range(len(others)), key=key.__getitem__)
    return [clean] + [others[i] for i in order]


class WorstCaseProtocol(Protocol):
    """One worst-case set; `instances` makes one per `--worst-case` kind."""

    name = "worst"
    description = "worst case over a set of transformations (early exit per image)"
    worst_case = True
    kind = ""
    _params: list[ViewParams] | None = None

    def view_params(self) -> list[ViewParams]:
        if self._params is None:  # made once: make_views reads them for every block
            self._params = self._view_params()
        return self._params

    def _view_params(self) -> list[ViewParams]:
        raise NotImplementedError

    @classmethod
    def instances(cls, preprocessing, options: ProtocolOptions) -> list[Protocol]:
        # `--protocol worst` alone: every set
        kinds = check_worst_kinds(options.extra.get("worst_case")) or list(KINDS)
        out = []
        for kind in kinds:
            match = _RANDOM.match(kind)
            if match:
                out.append(RandomSet(preprocessing, options, int(match.group(1))))
            else:
                out.append(_SETS[kind](preprocessing, options))
        return out

    @property
    def key(self) -> str:
        return f"worst@{self.kind}"

    @property
    def exhaustive(self) -> bool:
        """Keep every view (no early exit)."""
        return bool(self.options.extra.get("exhaustive", False))

    def params(self) -> dict:
        return {
            "name": self.name,
            "key": self.key,
            "kind": self.kind,
            "input_size": self.input_size,
            "views": self.n_views,
            "exhaustive": self.exhaustive,
        }


class CircularSet(WorstCaseProtocol):
    """AFC's rolls by (1..31)^2, taken modulo R (each distinct roll once, the identity only as
    view 0), so below R = 32 the robust answer is still AFC's at that size."""

    kind = "circular"

    def params(self) -> dict:
        return {**super().params(), "shifts": [1, AFC_WINDOW - 1]}

    def source(self) -> SourceRequest:
        return SourceRequest("standard", self.input_size)

    def _view_params(self) -> list[ViewParams]:
        r, shifts = self.input_size, range(1, AFC_WINDOW)

        def wrapped(s: int) -> int:  # a roll by s is a roll by s - R: record the shorter
            s %= r
            return s - r if s > r // 2 else s

        rolls = dict.fromkeys((wrapped(x), wrapped(y)) for x in shifts for y in shifts)
        rolls.pop((0, 0), None)  # the identity is view 0
        return _by_size([ViewParams(0, 0, r)] + [ViewParams(x, y, r) for x, y in rolls])

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        # A roll by (dy, dx) is the window at (H - dy, W - dx) mod (H, W) of the source
        # tiled 2 x 2: one slice per view, copied once by the stack (torch.roll copies twice).
        params = self.view_params()
        height, width = source.shape[-2:]
        tiled = source.repeat(1, 2, 2)
        windows = []
        for k in indices:
            top, left = -int(params[k].dy) % height, -int(params[k].dx) % width
            windows.append(tiled[:, top : top + height, left : left + width])
        return torch.stack(windows)


class CropSet(WorstCaseProtocol):
    """Windows of an enlarged image: the centre one (offset (M, M)) and every offset in
    (1..2M)^2 (so the centre window appears twice, as in AFC's loop). A window at offset
    (ox, oy) shows the content moved by (dx, dy) = (M - ox, M - oy)."""

    kind = "crop"

    @property
    def margin(self) -> int:
        return max(1, round(AFC_CROP_SHIFT * self.input_size / 224))

    @property
    def side(self) -> int:
        return max(
            round(AFC_CROP_RESIZE * self.input_size / 224), self.input_size + 2 * self.margin
        )

    def params(self) -> dict:
        return {**super().params(), "resize": self.side, "max_shift": self.margin}

    def source(self) -> SourceRequest:
        return SourceRequest("short_side", self.side)

    def _view_params(self) -> list[ViewParams]:
        r, m = self.input_size, self.margin
        offsets = range(1, 2 * m + 1)
        return _by_size(
            [ViewParams(0, 0, r)]
            + [ViewParams(m - ox, m - oy, r) for ox in offsets for oy in offsets]
        )

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        r, m = self.input_size, self.margin
        inner = r + 2 * m  # AFC's CenterCrop(224 + 2 M), torchvision's rounding
        top = int(round((source.shape[-2] - inner) / 2.0))
        left = int(round((source.shape[-1] - inner) / 2.0))
        params = self.view_params()
        windows = []
        for k in indices:
            x = left + m - int(params[k].dx)
            y = top + m - int(params[k].dy)
            windows.append(source[:, y : y + r, x : x + r])
        return torch.stack(windows)


def afc_fraction_factors(max_up: int = AFC_MAX_UP) -> list[int]:
    """AFC's up factors: 1..max_up less those that divide a larger one (no shift twice)."""
    ups = range(1, max_up + 1)
    return [u for u in ups if not any(j > u and j % u == 0 for j in ups)]


class FourierSet(WorstCaseProtocol):
    """Band-limited circular shifts by -(i / u, j / u) px (AFC rolls the u-times upsampled
    image by -i, -j: content moves up and left)."""

    kind = "fourier"

    def params(self) -> dict:
        return {**super().params(), "up_factors": afc_fraction_factors()}

    def source(self) -> SourceRequest:
        return SourceRequest("standard", self.input_size)

    def _view_params(self) -> list[ViewParams]:
        r = self.input_size
        params = [ViewParams(0.0, 0.0, r)]
        for u in afc_fraction_factors():
            params += [ViewParams(-j / u, -i / u, r) for i in range(1, u) for j in range(1, u)]
        return _by_size(params)

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        params = self.view_params()
        real = source if source.dtype in (torch.float32, torch.float64) else source.float()
        complex_dtype = torch.complex128 if real.dtype == torch.float64 else torch.complex64
        height, width = real.shape[-2:]
        phases = torch.stack(
            [
                fourier_shift_phases(
                    height, width, params[k].dx, params[k].dy, real.device, complex_dtype
                )
                for k in indices
            ]
        )
        spectrum = torch.fft.rfft2(real)
        return torch.fft.irfft2(spectrum.unsqueeze(0) * phases.unsqueeze(1), s=(height, width))


class _RotationTranslation(WorstCaseProtocol):
    """Views that rotate and translate the standard input (bilinear, black outside)."""

    @property
    def max_translation(self) -> float:
        """t in px: 3/28 of the input side (24 px at 224, about 3.4 px at 32)."""
        return ENGSTROM_TRANSLATION * self.input_size

    def params(self) -> dict:
        return {
            **super().params(),
            "rotation_deg": [-ENGSTROM_ROTATION, ENGSTROM_ROTATION],
            "translation_px": [-self.max_translation, self.max_translation],
            "interpolation": "bilinear",
            "fill": "black",
        }

    def source(self) -> SourceRequest:
        return SourceRequest("standard", self.input_size)

    def _sort(self, params: list[ViewParams]) -> list[ViewParams]:
        # one degree weighs as much as t / 30 px: the corners of the set are equally far
        return _by_size(params, self.max_translation / ENGSTROM_ROTATION)

    def make_views(self, source: torch.Tensor, indices: range) -> torch.Tensor:
        params = [self.view_params()[k] for k in indices]
        return rotate_translate(source, params, self.preprocessing.black_value())


def rotate_translate(
    source: torch.Tensor, params: list[ViewParams], fill: tuple[float, float, float]
) -> torch.Tensor:
    """Views [V, 3, H, W] of `source` [3, H, W]: output pixel p (px from the centre, x right,
    y down) samples the source at R(angle) p - (dx, dy), bilinearly, `fill` outside."""
    height, width = source.shape[-2:]
    theta = torch.zeros(len(params), 2, 3, dtype=torch.float64)
    for i, p in enumerate(params):
        a = math.radians(p.angle)
        cos, sin = math.cos(a), math.sin(a)
        # normalised coordinates: x_n = 2 x / W (align_corners=False, origin at the centre)
        theta[i] = torch.tensor(
            [
                [cos, -sin * height / width, -2.0 * p.dx / width],
                [sin * width / height, cos, -2.0 * p.dy / height],
            ]
        )
    theta = theta.to(device=source.device, dtype=source.dtype)
    shape = (len(params), source.shape[0], height, width)
    grid = F.affine_grid(theta, shape, align_corners=False)
    background = torch.tensor(fill, device=source.device, dtype=source.dtype).view(1, 3, 1, 1)
    moved = F.grid_sample(
        (source.unsqueeze(0) - background).expand(shape),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return moved + background  # bilinear weights outside the image fall on the fill colour


class GridSet(_RotationTranslation):
    """Engstrom's grid: every (angle, dx, dy) of 31 rotations x 5 x 5 translations."""

    kind = "grid"

    def _view_params(self) -> list[ViewParams]:
        r, t = self.input_size, self.max_translation
        angles = np.linspace(-ENGSTROM_ROTATION, ENGSTROM_ROTATION, ENGSTROM_ROTATIONS)
        shifts = np.linspace(-t, t, ENGSTROM_TRANSLATIONS)
        grid = [
            ViewParams(float(dx), float(dy), r, float(a))
            for a in angles
            for dx in shifts
            for dy in shifts
        ]
        clean = next(p for p in grid if p.dx == 0 and p.dy == 0 and p.angle == 0)
        return self._sort([clean] + [p for p in grid if p is not clean])


class RandomSet(_RotationTranslation):
    """The untransformed input and K random draws from the grid's ranges (Engstrom's
    worst-of-K), in the grid's order (the draws are a set: the answers do not depend on it).
    Drawn per image, seeded by (`--seed`, the key, the
    image's id), so a view depends only on the image and the seed."""

    def __init__(self, preprocessing, options, k: int = 10, image_id: str | None = None):
        super().__init__(preprocessing, options)
        self.k = k
        self.kind = f"random{k}"
        self.image_id = image_id
        seed = [int(options.seed), zlib.crc32(self.key.encode())]
        if image_id is not None:
            seed.append(zlib.crc32(image_id.encode()))
        rng = np.random.default_rng(seed)
        t = self.max_translation
        angles = rng.uniform(-ENGSTROM_ROTATION, ENGSTROM_ROTATION, size=k)
        shifts = rng.uniform(-t, t, size=(k, 2))
        r = self.input_size
        self._params = self._sort(
            [ViewParams(0.0, 0.0, r, 0.0)]
            + [
                ViewParams(float(dx), float(dy), r, float(a))
                for a, (dx, dy) in zip(angles, shifts, strict=True)
            ]
        )

    @property
    def exhaustive(self) -> bool:
        """Always every view (K + 1 of them): `worst_of_k_accuracy` needs the view of
        highest loss."""
        return True

    def for_image(self, image_id: str) -> Protocol:
        return RandomSet(self.preprocessing, self.options, self.k, image_id)

    def params(self) -> dict:
        return {**super().params(), "draws": self.k, "seed": int(self.options.seed)}


_SETS = {"circular": CircularSet, "crop": CropSet, "fourier": FourierSet, "grid": GridSet}


register_protocol(WorstCaseProtocol)
