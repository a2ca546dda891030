"""The layer-by-layer diagnosis of one model over a stream of images.

For each image: one forward pass of the unshifted view keeps every layer's reference map (and
measures aliasing energy at every subsampling layer); then each shifted view's forward pass
compares every layer's map with the reference moved by the same shift, reduced to one number per
(layer, shift) inside the hook. Only the current image's reference maps are ever held.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import ArgumentError
from ..models import Preprocessing
from ..protocols import Protocol, ProtocolOptions, build_protocols
from ..protocols._paths import MAX_VIEWS, path_length
from ..protocols.fourier import fourier_shift_phases
from ._aliasing import aliasing_energy, dense_output
from ._calls import CallTaps
from ._equivariance import compare_batch, is_integer_shift, relative_change
from ._stride import LayerInfo, StrideMap, collapse, stride_map

# Protocols whose views are pure shifts of one image, and whether the shift is circular. Every
# protocol records a view's (dx, dy) as the displacement of its content in px (crop: window
# right = content left, dx < 0), so (dx, dy) is the content's displacement as it is.
SHIFT_PROTOCOLS: dict[str, bool] = {
    "circular": True,
    "fourier": True,
    "crop": False,
}
FIGURE_SHIFTS = 8  # consecutive views shown in the feature-map figure
# A sub-cell fraction shared by at least this many views is interpolated once per image.
REUSED_FRACTION = 3


def shift_protocol(
    name: str,
    preprocessing: Preprocessing | int,
    shifts: int,
    path: str = "diagonal",
    fourier_step: float = 0.25,
) -> Protocol:
    """The protocol whose views are shifts 0..`shifts` steps along `path`.

    Args:
        name: 'circular' (torch.roll, 1 px steps), 'crop' (windows 1 px apart of an image
            resized to R + shifts + 1) or 'fourier' (band-limited shifts of `fourier_step` px).
        preprocessing: the model's preprocessing, or just its input size R in pixels.
        shifts: T, the largest shift in steps (T + 1 views, the first unshifted).
        path: 'diagonal', 'horizontal', 'vertical' or 'grid'.
        fourier_step: px per step of the fourier protocol.
    """
    if name not in SHIFT_PROTOCOLS:
        raise ArgumentError(
            f"layers: protocol '{name}' is not a pure shift; choose one of "
            f"{', '.join(SHIFT_PROTOCOLS)}"
        )
    if isinstance(shifts, bool) or not isinstance(shifts, int) or shifts < 1:
        raise ArgumentError(f"--shifts must be a positive integer (got {shifts!r})")
    if path_length(path, shifts + 1) > MAX_VIEWS:
        raise ArgumentError(
            f"--shifts {shifts} along '{path}' makes {path_length(path, shifts + 1):,} views per "
            f"image, more than {MAX_VIEWS:,}; use fewer --shifts"
        )
    if isinstance(preprocessing, int):
        preprocessing = Preprocessing(input_size=preprocessing, source="layers: input size only")
    options = ProtocolOptions(
        path=path, steps=shifts + 1, extra={"fourier_step": float(fourier_step)}
    )
    return build_protocols([name], preprocessing, options)[0]


@dataclass
class FeatureMaps:
    """One image's maps at consecutive shifts, for the study's picture.

    `inputs[k]` is view k as RGB [H, W, 3] in 0..1; `maps[layer][k]` is one channel [H, W] of
    that layer's map (the channel that varies most in the unshifted view, `channels[layer]`).
    """

    image_id: str
    view_indices: list[int]
    inputs: list[np.ndarray] = field(default_factory=list)
    maps: dict[str, list[np.ndarray]] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)


@dataclass
class LayersReport:
    """Everything `jaggy layers` measured. Arrays are per image (axis 0), in image order.

    errors: [images, layers, views] normalised equivariance error (0 at view 0, the reference).
    pooled, logits: [images, views] relative change of the globally pooled last feature map and
        of the model's output versus view 0 (NaN where the model has no [N, K] output).
    aliasing_input / aliasing_dense / aliasing_before_nonlinearity: [images, subsampling layers]
        aliasing energy of each subsampling layer's input, of its stride-1 output, and of the
        input of the activation that feeds it (NaN where not applicable).
    displacements: [views] (dx, dy), the content displacement of each view in px of the input.
    cell_shifts: [layers][views] (dx, dy), the content displacement in cells of each map.
    """

    model: str
    stride_map: StrideMap
    protocol: dict
    views: list[tuple[float, float]]
    displacements: list[tuple[float, float]]
    periodic: bool
    cell_shifts: list[list[tuple[float, float]]]
    image_ids: list[str]
    errors: np.ndarray
    pooled: np.ndarray
    logits: np.ndarray
    aliasing_input: np.ndarray
    aliasing_dense: np.ndarray
    aliasing_before_nonlinearity: np.ndarray
    feature_maps: FeatureMaps | None = None
    skipped: list[dict] = field(default_factory=list)

    @property
    def layers(self) -> list[LayerInfo]:
        return self.stride_map.layers

    @property
    def n_images(self) -> int:
        return len(self.image_ids)

    def on_grid(self, layer: int, view: int) -> bool:
        """Whether view `view` moves layer `layer`'s map by a whole number of cells."""
        return is_integer_shift(*self.cell_shifts[layer][view])

    def mean_errors(self) -> np.ndarray:
        """[layers, views] equivariance error averaged over images (NaN-aware)."""
        return nan_mean(self.errors, 0, self.errors.shape[1:])

    def to_dict(self) -> dict:
        """The content of layers.json (NaN written as null)."""
        mean = self.mean_errors()
        sub_index = {layer.index: j for j, layer in enumerate(self.stride_map.subsampling)}
        alias_in = nan_mean(self.aliasing_input, 0, (len(sub_index),))
        alias_dense = nan_mean(self.aliasing_dense, 0, (len(sub_index),))
        alias_pre = nan_mean(self.aliasing_before_nonlinearity, 0, (len(sub_index),))
        layers = []
        for li, layer in enumerate(self.layers):
            on = [k for k in range(1, len(self.views)) if self.on_grid(li, k)]
            off = [k for k in range(1, len(self.views)) if not self.on_grid(li, k)]
            j = sub_index.get(layer.index)
            layers.append(
                {
                    **layer.to_dict(),
                    "equivariance_error": [_num(v) for v in mean[li]],
                    "mean_error_on_grid": _num(_mean_of(mean[li], on)),
                    "mean_error_off_grid": _num(_mean_of(mean[li], off)),
                    "aliasing_energy": None if j is None else _num(alias_in[j]),
                    "aliasing_energy_dense": None if j is None else _num(alias_dense[j]),
                    "aliasing_energy_before_nonlinearity": None
                    if j is None
                    else _num(alias_pre[j]),
                    "nonlinearity": layer.nonlinearity,
                }
            )
        return {
            "model": self.model,
            "input_size": collapse(self.stride_map.input_size),
            "total_stride": collapse(self.stride_map.total_stride),
            "subsampling": [layer.name for layer in self.stride_map.subsampling],
            "protocol": self.protocol,
            "periodic": self.periodic,
            "shifts": [
                {"index": k, "dx": dx, "dy": dy, "content_dx": ux, "content_dy": uy}
                for k, ((dx, dy), (ux, uy)) in enumerate(
                    zip(self.views, self.displacements, strict=True)
                )
            ],
            "n_images": self.n_images,
            "images": list(self.image_ids),
            "skipped": list(self.skipped),
            "layers": layers,
            "pooled": {
                "relative_change": [_num(v) for v in nan_mean(self.pooled, 0, (len(self.views),))]
            },
            "logits": {
                "relative_change": [_num(v) for v in nan_mean(self.logits, 0, (len(self.views),))]
            },
            "definitions": DEFINITIONS,
        }


DEFINITIONS = {
    "equivariance_error": "per shift: ||F(shift(x)) - S(F(x))|| / ||S(F(x))||, mean over images; "
    "S moves the reference map by the content displacement / cumulative stride cells (torch.roll "
    "when whole, band-limited Fourier interpolation otherwise); crop compares overlapping cells",
    "mean_error_on_grid": "mean error over shifts that are whole multiples of the cumulative stride",
    "mean_error_off_grid": "mean error over the other nonzero shifts (the shiftability test)",
    "aliasing_energy": "fraction of the input's mean-removed spectral power above the Nyquist "
    "frequency of the layer's output grid, mean over channels and images",
    "aliasing_energy_dense": "the same for the layer's output computed at stride 1 (the signal "
    "that the layer samples)",
    "aliasing_energy_before_nonlinearity": "the same for the input of the activation that "
    "feeds the layer",
    "pooled": "relative change ||p(shift) - p(0)|| / ||p(0)|| of the spatial mean of the last "
    "feature map",
    "logits": "relative change of the model's output vector",
}


class LayerAnalysis:
    """Accumulates the per-layer diagnosis of `model` under one shift protocol, image by image
    (`update`), and returns a `LayersReport` (`compute`).

    Args:
        model: the classifier in eval mode; any module taking [N, 3, R, R].
        protocol: a `shift_protocol(...)` (circular, crop or fourier).
        batch_size: shifted views per forward pass.
        show_layers: layer names for the feature-map picture (default: the last layer at each
            cumulative stride); maps are kept for the first image only.
        model_name: recorded in the report.
    """

    def __init__(
        self,
        model: nn.Module,
        protocol: Protocol,
        *,
        batch_size: int = 8,
        show_layers: Sequence[str] | None = None,
        model_name: str | None = None,
    ):
        if protocol.name not in SHIFT_PROTOCOLS:
            raise ArgumentError(
                f"layers: protocol '{protocol.name}' is not a pure shift; choose one of "
                f"{', '.join(SHIFT_PROTOCOLS)}"
            )
        if batch_size < 1:
            raise ArgumentError(f"--batch-size must be at least 1 (got {batch_size})")
        if model.training:
            raise ArgumentError(
                "the model is in training mode (batch statistics, dropout): call model.eval() "
                "before the layer analysis"
            )
        self.model = model
        self.protocol = protocol
        self.batch_size = int(batch_size)
        self.model_name = model_name or type(model).__name__
        param = next(iter(model.parameters()), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self.map = stride_map(model, protocol.input_size, device=self.device)
        if not self.map.layers:
            raise ArgumentError(
                f"{self.model_name} has no spatial feature maps that jaggy can see (no module "
                "returns [N, C, H, W] maps or patch tokens)"
            )
        self.periodic = SHIFT_PROTOCOLS[protocol.name]
        self.views = [(float(p.dx), float(p.dy)) for p in protocol.view_params()]
        # A shift protocol's views move the content by their own (dx, dy).
        self.displacements = list(self.views)
        self.cell_shifts = [
            [
                # cumulative_stride is (rows, columns), in the map's array order
                (ux / layer.cumulative_stride[1], uy / layer.cumulative_stride[0])
                for ux, uy in self.displacements
            ]
            for layer in self.map.layers
        ]
        self.fraction_uses = [
            Counter((fx, fy) for _, _, fx, fy in (_split(dx, dy) for dx, dy in shifts[1:]))
            for shifts in self.cell_shifts
        ]
        self.subsampling = self.map.subsampling
        self.show_layers = list(show_layers) if show_layers else default_show_layers(self.map)
        for name in self.show_layers:
            self.map.layer(name)  # unknown names fail now, with suggestions
        self._images: list[str] = []
        self._errors: list[np.ndarray] = []
        self._pooled: list[np.ndarray] = []
        self._logits: list[np.ndarray] = []
        self._alias: dict[str, list[np.ndarray]] = {"input": [], "dense": [], "pre": []}
        self.feature_maps: FeatureMaps | None = None
        self.skipped: list[dict] = []

    @property
    def n_views(self) -> int:
        return len(self.views)

    def skip(self, image_id: str, reason: str) -> None:
        """Record an image that could not be used (it appears in the report's `skipped`)."""
        self.skipped.append({"image_id": image_id, "reason": reason})

    def update(self, source: torch.Tensor, image_id: str | None = None) -> None:
        """Measure one image.

        Args:
            source: the protocol's normalised source [3, S, S] (`protocol.source()` says which
                side S: R for circular and fourier, R + T + 1 for crop).
            image_id: a name for the image (default: its position).
        """
        image_id = image_id if image_id is not None else str(len(self._images))
        side = self.protocol.source().side
        if source.ndim != 3 or tuple(source.shape[-2:]) != (side, side):
            raise ArgumentError(
                f"{self.protocol.name}: the source must be [C, {side}, {side}] "
                f"(protocol.source()); got {tuple(source.shape)}"
            )
        source = source.to(self.device, torch.float32)
        state = _ImageState(self, image_id, keep_maps=self.feature_maps is None)
        taps = CallTaps(self.model)
        state.install(taps)
        with taps:
            state.mode = "reference"
            taps.start_pass()
            with torch.no_grad():
                ref_view = self.protocol.make_views(source, range(0, 1))
                state.record_input(ref_view, [0])
                state.reference_output(self.model(ref_view))
            state.mode = "shifted"
            for start in range(1, self.n_views, self.batch_size):
                batch = list(range(start, min(start + self.batch_size, self.n_views)))
                state.batch = batch
                taps.start_pass()
                with torch.no_grad():
                    views = self.protocol.make_views(source, range(batch[0], batch[-1] + 1))
                    state.record_input(views, batch)
                    state.shifted_output(self.model(views))
        self._images.append(image_id)
        self._errors.append(state.errors)
        self._pooled.append(state.pooled)
        self._logits.append(state.logits)
        self._alias["input"].append(state.alias_input)
        self._alias["dense"].append(state.alias_dense)
        self._alias["pre"].append(state.alias_pre)
        if state.feature_maps is not None:
            self.feature_maps = state.feature_maps

    def compute(self) -> LayersReport:
        n_layers, n_sub, n_views = len(self.map.layers), len(self.subsampling), self.n_views

        def stack(arrays, shape):
            return np.stack(arrays) if arrays else np.zeros((0, *shape))

        return LayersReport(
            model=self.model_name,
            stride_map=self.map,
            protocol=self.protocol.params(),
            views=list(self.views),
            displacements=list(self.displacements),
            periodic=self.periodic,
            cell_shifts=self.cell_shifts,
            image_ids=list(self._images),
            errors=stack(self._errors, (n_layers, n_views)),
            pooled=stack(self._pooled, (n_views,)),
            logits=stack(self._logits, (n_views,)),
            aliasing_input=stack(self._alias["input"], (n_sub,)),
            aliasing_dense=stack(self._alias["dense"], (n_sub,)),
            aliasing_before_nonlinearity=stack(self._alias["pre"], (n_sub,)),
            feature_maps=self.feature_maps,
            skipped=list(self.skipped),
        )


def analyze_layers(
    model: nn.Module,
    sources,
    protocol: Protocol,
    **kwargs,
) -> LayersReport:
    """`LayerAnalysis(model, protocol, **kwargs)` over `sources` (tensors, or (image_id,
    tensor) pairs), then `compute()`."""
    analysis = LayerAnalysis(model, protocol, **kwargs)
    for item in sources:
        if isinstance(item, torch.Tensor):
            analysis.update(item)
        else:
            image_id, tensor = item
            analysis.update(tensor, image_id)
    return analysis.compute()


def default_show_layers(smap: StrideMap, limit: int = 6) -> list[str]:
    """The last layer at each cumulative stride, in depth order (at most `limit`)."""
    last: dict[tuple[int, int], str] = {}
    for layer in smap.layers:
        last[layer.cumulative_stride] = layer.name
    names = list(last.values())
    if len(names) > limit:
        keep = np.linspace(0, len(names) - 1, limit).round().astype(int)
        names = [names[i] for i in sorted(set(keep.tolist()))]
    return names


class _ImageState:
    """Per-image buffers and the hook callbacks that fill them."""

    def __init__(self, analysis: LayerAnalysis, image_id: str, keep_maps: bool):
        self.a = analysis
        n_layers, n_views = len(analysis.map.layers), analysis.n_views
        n_sub = len(analysis.subsampling)
        self.mode = "reference"
        self.batch: list[int] = [0]
        self.errors = np.full((n_layers, n_views), np.nan)
        self.errors[:, 0] = 0.0  # view 0 is the reference itself
        self.pooled = np.full(n_views, np.nan)
        self.logits = np.full(n_views, np.nan)
        self.pooled[0] = 0.0
        self.alias_input = np.full(n_sub, np.nan)
        self.alias_dense = np.full(n_sub, np.nan)
        self.alias_pre = np.full(n_sub, np.nan)
        self.references: dict[int, torch.Tensor] = {}
        self.spectra: dict[int, torch.Tensor] = {}
        self.fractions: dict[tuple[int, float, float], torch.Tensor] = {}
        self.pooled_ref: torch.Tensor | None = None
        self.logits_ref: torch.Tensor | None = None
        self.last_layer = n_layers - 1
        self.feature_maps: FeatureMaps | None = None
        if keep_maps:
            shown = list(range(min(FIGURE_SHIFTS, n_views)))
            self.feature_maps = FeatureMaps(image_id, shown)
        self.show = (
            {analysis.map.layer(n).index for n in analysis.show_layers} if keep_maps else set()
        )

    def install(self, taps: CallTaps) -> None:
        for li, layer in enumerate(self.a.map.layers):
            taps.on_output[(layer.module_name, layer.call)] = self._output_tap(li, layer)
        feeds: dict[tuple[str, int], list[int]] = {}
        for j, layer in enumerate(self.a.subsampling):
            taps.on_input[(layer.module_name, layer.call)] = self._input_tap(j, layer)
            if layer.nonlinearity_call is not None:
                feeds.setdefault(layer.nonlinearity_call, []).append(j)
        for key, subs in feeds.items():
            taps.on_input[key] = self._activation_tap(subs)

    # --- reference pass: aliasing energy at every subsampling layer --------------------------
    def _input_tap(self, j: int, layer: LayerInfo):
        module = self.a.model.get_submodule(layer.module_name)

        def tap(x: torch.Tensor) -> None:
            if self.mode != "reference" or x.ndim != 4:
                return
            self.alias_input[j] = aliasing_energy(x[0], layer.stride)
            dense = dense_output(module, x[:1].clone())
            if dense is not None:
                self.alias_dense[j] = aliasing_energy(dense[0], layer.stride)

        return tap

    def _activation_tap(self, subs: list[int]):
        def tap(x: torch.Tensor) -> None:
            if self.mode != "reference" or x.ndim != 4:
                return
            for j in subs:
                self.alias_pre[j] = aliasing_energy(x[0], self.a.subsampling[j].stride)

        return tap

    # --- every pass: the layer's map ------------------------------------------------------------
    def _output_tap(self, li: int, layer: LayerInfo):
        def tap(out: torch.Tensor) -> None:
            maps = _as_map(out, layer)
            if maps is None:
                return
            if self.mode == "reference":
                self.references[li] = maps[0].detach().float().clone()
                if li == self.last_layer:
                    self.pooled_ref = maps[0].float().mean(dim=(-2, -1))
                if li in self.show:
                    ref = self.references[li]
                    channel = int(ref.flatten(1).var(dim=1).argmax())
                    self.feature_maps.channels[layer.name] = channel
                    self.feature_maps.maps[layer.name] = [ref[channel].cpu().numpy()]
                return
            reference = self.references.get(li)
            if reference is None:
                return
            shifts = [self.a.cell_shifts[li][k] for k in self.batch]
            maps = maps.float()
            expected = self._expected_batch(li, reference, shifts)
            errors = compare_batch(maps, expected, shifts, self.a.periodic)
            self.errors[li, self.batch] = errors.cpu().numpy()
            if li == self.last_layer and self.pooled_ref is not None:
                pooled = maps.float().mean(dim=(-2, -1))
                change = relative_change(pooled, self.pooled_ref).cpu().numpy()
                self.pooled[self.batch] = change
            if li in self.show and self.feature_maps is not None:
                channel = self.feature_maps.channels[layer.name]
                for b, k in enumerate(self.batch):
                    if k in self.feature_maps.view_indices:
                        self.feature_maps.maps[layer.name].append(maps[b, channel].cpu().numpy())

        return tap

    def _expected_batch(
        self, li: int, reference: torch.Tensor, shifts: list[tuple[float, float]]
    ) -> torch.Tensor:
        """The reference moved by each (dx, dy) cell shift, stacked [B, C, H, W].

        Whole shifts: torch.roll (exact). A fraction that many views share (a path crosses the
        same sub-cell positions again and again on fine-stride layers) is
        interpolated once per image and rolled; the other shifts are interpolated together in
        one batched band-limited transform.
        """
        expected: list[torch.Tensor | None] = [None] * len(shifts)
        direct: list[int] = []
        for b, (dx, dy) in enumerate(shifts):
            ix, iy, fx, fy = _split(dx, dy)
            if fx == 0 and fy == 0:
                expected[b] = _roll(reference, ix, iy)
            elif self.a.fraction_uses[li].get((fx, fy), 0) >= REUSED_FRACTION:
                expected[b] = _roll(self._fraction(li, reference, fx, fy), ix, iy)
            else:
                direct.append(b)
        if direct:
            height, width = reference.shape[-2:]
            spectrum = self._spectrum(li, reference)
            phases = torch.stack(
                [
                    fourier_shift_phases(
                        height, width, shifts[b][0], shifts[b][1], reference.device, spectrum.dtype
                    )
                    for b in direct
                ]
            )
            moved = torch.fft.irfft2(spectrum.unsqueeze(0) * phases.unsqueeze(1), s=(height, width))
            for n, b in enumerate(direct):
                expected[b] = moved[n]
        return torch.stack(expected)

    def _spectrum(self, li: int, reference: torch.Tensor) -> torch.Tensor:
        spectrum = self.spectra.get(li)
        if spectrum is None:
            spectrum = self.spectra[li] = torch.fft.rfft2(reference)
        return spectrum

    def _fraction(self, li: int, reference: torch.Tensor, fx: float, fy: float) -> torch.Tensor:
        """The reference moved by a fraction of a cell, kept for the rest of the image."""
        base = self.fractions.get((li, fx, fy))
        if base is None:
            height, width = reference.shape[-2:]
            spectrum = self._spectrum(li, reference)
            phases = fourier_shift_phases(height, width, fx, fy, reference.device, spectrum.dtype)
            base = self.fractions[(li, fx, fy)] = torch.fft.irfft2(
                spectrum * phases, s=(height, width)
            )
        return base

    # --- model input and output -----------------------------------------------------------------
    def record_input(self, views: torch.Tensor, indices: list[int]) -> None:
        if self.feature_maps is None:
            return
        prep = self.a.protocol.preprocessing
        for b, k in enumerate(indices):
            if k in self.feature_maps.view_indices and views.shape[1] == 3:
                rgb = prep.to_pixels(views[b]).clamp(0, 1).permute(1, 2, 0)
                self.feature_maps.inputs.append(rgb.cpu().numpy())

    def reference_output(self, out) -> None:
        if isinstance(out, torch.Tensor) and out.ndim == 2:
            self.logits_ref = out[0].float()
            self.logits[0] = 0.0

    def shifted_output(self, out) -> None:
        if self.logits_ref is not None and isinstance(out, torch.Tensor) and out.ndim == 2:
            self.logits[self.batch] = relative_change(out.float(), self.logits_ref).cpu().numpy()


def _as_map(out: torch.Tensor, layer: LayerInfo) -> torch.Tensor | None:
    """The output as [B, C, H, W] (tokens re-arranged on the patch grid)."""
    if layer.token_prefix is None:
        return out if out.ndim == 4 else None
    if out.ndim != 3:
        return None
    _, gh, gw = layer.out_shape
    tokens = out[:, layer.token_prefix :, :]
    if tokens.shape[1] != gh * gw:
        return None
    return tokens.transpose(1, 2).reshape(out.shape[0], out.shape[2], gh, gw)


def nan_mean(values: np.ndarray, axis: int = 0, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Mean over `axis` of the finite values; NaN where none is left (no warning). `shape`:
    the result's shape when `values` is empty (no image yet). The one NaN-mean of the layer
    analysis and its figures."""
    values = np.asarray(values, dtype=np.float64)
    if shape is not None and values.size == 0:
        return np.full(shape, np.nan)
    finite = np.isfinite(values)
    counts = finite.sum(axis=axis)
    sums = np.where(finite, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _mean_of(values: np.ndarray, indices: list[int]) -> float:
    if not indices:
        return math.nan
    return float(nan_mean(values[indices], 0))


def _num(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _split(dx: float, dy: float) -> tuple[int, int, float, float]:
    """(ix, iy, fx, fy): whole cells and the fraction in [0, 1) of a cell shift."""
    ix, iy = math.floor(dx + 1e-9), math.floor(dy + 1e-9)
    fx, fy = round(dx - ix, 9), round(dy - iy, 9)
    return ix, iy, (0.0 if fx in (0.0, 1.0) else fx), (0.0 if fy in (0.0, 1.0) else fy)


def _roll(x: torch.Tensor, ix: int, iy: int) -> torch.Tensor:
    return torch.roll(x, shifts=(iy, ix), dims=(-2, -1)) if (ix or iy) else x
