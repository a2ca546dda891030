"""The stride map: every module call that produces a spatial feature map, its own stride and its
cumulative stride from the input, found with forward hooks on one probe pass.

Conventions: strides are (vertical, horizontal) integers in pixels of the model input per cell
of the feature map. A layer's *own* stride comes from its `stride` attribute for convolutions and
pooling (timm's `Conv2dSame` and `MaxPool2dSame` included) and otherwise from the ratio of its
input and output sizes, rounded. The *cumulative* stride of a feature map is its input's
cumulative stride times the layer's own stride; feature maps of equal size share it. Token
sequences of vision transformers ([N, prefix + gh * gw, D]) count as feature maps on the patch
grid (prefix tokens, e.g. the class token, are dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ArgumentError
from ._calls import ModuleCall, record_calls

# Most prefix tokens (class, distillation, register tokens) a token map may carry.
_MAX_PREFIX_TOKENS = 16
_POOLS = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.LPPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.FractionalMaxPool2d,
)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
_NOT_ACTIVATIONS = ("Softmax", "Softmin", "LogSoftmax", "Softmax2d", "MultiheadAttention")


def is_activation(module: nn.Module) -> bool:
    """A pointwise nonlinearity module (torch.nn's or timm's activations)."""
    cls = type(module)
    if cls.__name__ in _NOT_ACTIVATIONS:
        return False
    return "activation" in cls.__module__ and not list(module.children())


def module_kind(module: nn.Module) -> str:
    """A short name for what a module does: conv, conv_dw, patch_embed, pool, blurpool, norm,
    norm_act, act, linear, attention, block or other."""
    cls_name = type(module).__name__.lower()
    if isinstance(module, nn.Conv2d):
        if module.groups > 1 and module.groups == module.in_channels:
            return "conv_dw"
        k, s = tuple(module.kernel_size), tuple(module.stride)
        if k == s and min(s) >= 4:
            return "patch_embed"
        return "conv"
    if "blur" in cls_name:
        return "blurpool"
    if isinstance(module, _POOLS) or "pool" in cls_name:
        return "pool"
    if "patchembed" in cls_name.replace("_", ""):
        return "patch_embed"
    if isinstance(module, _NORMS) or "norm" in cls_name:
        act = getattr(module, "act", None)
        if isinstance(act, nn.Module) and not isinstance(act, nn.Identity):
            return "norm_act"
        return "norm"
    if is_activation(module):
        return "act"
    if isinstance(module, nn.Linear):
        return "linear"
    if "attention" in cls_name:
        return "attention"
    if list(module.children()):
        return "block"
    return "other"


@dataclass(frozen=True)
class LayerInfo:
    """One feature map of the model: the output of one module call.

    Attributes:
        index: position in execution order among the reported layers.
        name: module name; a module called k > 1 times per pass gets `name#k` for call k.
        kind: see `module_kind`.
        module_type: the module's class name.
        stride: own stride (sy, sx) in input cells per output cell.
        cumulative_stride: (ry, rx) pixels of the model input per cell of this map.
        out_shape: (C, H, W) of the feature map (tokens: (D, gh, gw)), without the batch.
        subsampling: whether this call subsamples (stride > 1 and no module inside it does).
        nonlinearity: for a subsampling layer, the activation call whose output it subsamples
            (None when its input does not come straight from an activation module).
        token_prefix: for token maps, the number of prefix tokens dropped; None for NCHW maps.
    """

    index: int
    name: str
    kind: str
    module_type: str
    stride: tuple[int, int]
    cumulative_stride: tuple[int, int]
    out_shape: tuple[int, int, int]
    subsampling: bool = False
    nonlinearity: str | None = None
    token_prefix: int | None = None
    module_name: str = ""
    call: int = 0
    nonlinearity_call: tuple[str, int] | None = field(default=None, repr=False)

    @property
    def spatial_size(self) -> tuple[int, int]:
        return self.out_shape[1], self.out_shape[2]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "module": self.module_type,
            "stride": collapse(self.stride),
            "cumulative_stride": collapse(self.cumulative_stride),
            "out_shape": list(self.out_shape),
            "subsampling": self.subsampling,
        }


def collapse(pair: tuple[int, int]) -> int | list[int]:
    """(s, s) -> s; a non-square (sy, sx) stays a list."""
    return pair[0] if pair[0] == pair[1] else [pair[0], pair[1]]


@dataclass
class StrideMap:
    """Every reported layer of a model at one input size, in execution order."""

    input_size: tuple[int, int]
    layers: list[LayerInfo]

    @property
    def total_stride(self) -> tuple[int, int]:
        """The largest cumulative stride of any feature map, (ry, rx)."""
        if not self.layers:
            return (1, 1)
        return max((layer.cumulative_stride for layer in self.layers), key=lambda r: r[0] * r[1])

    @property
    def subsampling(self) -> list[LayerInfo]:
        return [layer for layer in self.layers if layer.subsampling]

    def layer(self, name: str) -> LayerInfo:
        for layer in self.layers:
            if layer.name == name:
                return layer
        close = [layer.name for layer in self.layers if name in layer.name][:8]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise ArgumentError(f"no layer named '{name}' in this model{hint}")

    def to_dict(self) -> dict:
        return {
            "input_size": list(self.input_size),
            "total_stride": collapse(self.total_stride),
            "subsampling": [layer.name for layer in self.subsampling],
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def table(self) -> str:
        """A console table: one line per layer."""
        rows = [("#", "layer", "kind", "stride", "cum.", "out_shape")]
        for layer in self.layers:
            stride = "x".join(str(s) for s in sorted(set(layer.stride)))
            cumulative = "x".join(str(s) for s in sorted(set(layer.cumulative_stride)))
            mark = " <" if layer.subsampling else ""
            rows.append(
                (
                    str(layer.index),
                    layer.name,
                    layer.kind,
                    stride + mark,
                    cumulative,
                    "x".join(str(d) for d in layer.out_shape),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows
        )


def stride_map(
    model: nn.Module,
    input_size: int | tuple[int, int],
    in_chans: int = 3,
    device: torch.device | str | None = None,
) -> StrideMap:
    """Find every spatial feature map of `model` with one probe pass on a zero input.

    Args:
        model: any module taking [N, C, H, W] images (eval mode is the caller's choice).
        input_size: R or (H, W) in pixels.
        in_chans: input channels.
        device: where to build the probe input (default: the model's parameters' device).

    Returns:
        A StrideMap. Reported layers are the distinct feature maps: a module that returns its
        input unchanged (Identity, eval Dropout) or a container that returns its last child's
        output adds no layer; a norm layer with a built-in activation (timm's BatchNormAct2d)
        is reported under its own name. Global pooling outputs (1 x 1) are not feature maps.
    """
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else "cpu"
    x = torch.zeros(1, in_chans, height, width, device=device)
    calls, _ = record_calls(model, x)
    return build_stride_map(calls, (height, width))


def build_stride_map(calls: list[ModuleCall], input_size: tuple[int, int]) -> StrideMap:
    """The stride map from the probe's module calls (in the order they ended)."""
    calls = [c for c in calls if c.name]  # the model itself returns logits, not a map
    sizes: dict[tuple[int, int], tuple[int, int]] = {tuple(input_size): (1, 1)}
    own: dict[int, tuple[int, int]] = {}
    cumulative: dict[int, tuple[int, int]] = {}
    grids: dict[int, tuple[tuple[int, int], int]] = {}  # call -> ((gh, gw), prefix) for tokens
    last_grid: tuple[int, int] | None = None
    token_count: int | None = None
    for i, call in enumerate(calls):
        out_hw = _spatial(call.out_shape)
        if out_hw is not None and token_count in call.out_shape[2:]:
            continue  # attention internals ([N, heads, L, d], [N, heads, L, L]), not a map
        if out_hw is None and last_grid is not None:
            prefix = _token_prefix(call.out_shape, last_grid)
            if prefix is not None:
                grids[i] = (last_grid, prefix)
                out_hw = last_grid
                token_count = int(call.out_shape[1])
        if out_hw is None:
            continue
        in_hw = _spatial(call.in_shape)
        if (
            in_hw is None
            and last_grid is not None
            and _token_prefix(call.in_shape, last_grid) is not None
        ):
            in_hw = last_grid
        stride = _own_stride(call.module, in_hw, out_hw)
        cum_in = sizes.get(in_hw) if in_hw else None
        if cum_in is None:
            cum_in = _estimate(input_size, in_hw) if in_hw else (1, 1)
        cum = sizes.setdefault(out_hw, (cum_in[0] * stride[0], cum_in[1] * stride[1]))
        own[i], cumulative[i] = stride, cum
        if i not in grids and out_hw[0] * out_hw[1] > 1:
            last_grid = out_hw
    selected = _distinct_maps(calls, own, grids)
    strided = [i for i in own if max(own[i]) > 1]
    subsampling = {
        i for i in strided if not any(calls[j].ran_inside(calls[i]) for j in strided if j != i)
    }
    multi = {c.name for c in calls if c.call > 0}
    layers = []
    for position, i in enumerate(selected):
        call = calls[i]
        out_shape = _map_shape(call.out_shape, grids.get(i))
        nonlinearity = _feeding_activation(calls, i) if i in subsampling else None
        layers.append(
            LayerInfo(
                index=position,
                name=_display_name(call, multi),
                kind=module_kind(call.module),
                module_type=type(call.module).__name__,
                stride=own[i],
                cumulative_stride=cumulative[i],
                out_shape=out_shape,
                subsampling=i in subsampling,
                nonlinearity=_display_name(calls[nonlinearity], multi)
                if nonlinearity is not None
                else None,
                token_prefix=grids[i][1] if i in grids else None,
                module_name=call.name,
                call=call.call,
                nonlinearity_call=(calls[nonlinearity].name, calls[nonlinearity].call)
                if nonlinearity is not None
                else None,
            )
        )
    return StrideMap(tuple(input_size), layers)


def _display_name(call: ModuleCall, multi: set[str]) -> str:
    return f"{call.name}#{call.call + 1}" if call.name in multi else call.name


def _spatial(shape: tuple[int, ...] | None) -> tuple[int, int] | None:
    if shape is None or len(shape) != 4:
        return None
    return int(shape[2]), int(shape[3])


def _token_prefix(shape: tuple[int, ...] | None, grid: tuple[int, int]) -> int | None:
    if shape is None or len(shape) != 3:
        return None
    prefix = int(shape[1]) - grid[0] * grid[1]
    return prefix if 0 <= prefix <= _MAX_PREFIX_TOKENS else None


def _map_shape(shape: tuple[int, ...], grid) -> tuple[int, int, int]:
    if grid is None:
        return int(shape[1]), int(shape[2]), int(shape[3])
    (gh, gw), _ = grid
    return int(shape[2]), gh, gw


def _own_stride(module: nn.Module, in_hw, out_hw) -> tuple[int, int]:
    if in_hw is None:
        return (1, 1)
    attr = getattr(module, "stride", None)
    if attr is not None and not list(module.children()) and out_hw[0] * out_hw[1] > 1:
        pair = attr if isinstance(attr, (tuple, list)) else (attr, attr)
        if len(pair) == 2 and all(isinstance(s, int) and s > 0 for s in pair):
            return int(pair[0]), int(pair[1])
    return tuple(max(1, round(i / o)) for i, o in zip(in_hw, out_hw, strict=True))


def _estimate(input_size, hw) -> tuple[int, int]:
    return tuple(max(1, round(r / s)) for r, s in zip(input_size, hw, strict=True))


def _distinct_maps(calls: list[ModuleCall], own: dict, grids: dict) -> list[int]:
    """Indices of calls whose output is a new feature map, in execution order."""
    chosen: list[int] = []
    by_key: dict = {}
    for i, call in enumerate(calls):
        if i not in own or call.out_key is None:
            continue
        if i not in grids:
            h, w = call.out_shape[2], call.out_shape[3]
            if h * w <= 1:
                continue  # global pooling: no spatial structure left
        if call.out_key == call.in_key:
            continue  # returned its input unchanged (Identity, eval-mode Dropout)
        if call.out_key in by_key:
            slot = by_key[call.out_key]
            inner = calls[chosen[slot]]
            # timm's BatchNormAct2d returns its `act` child's output: report the norm layer.
            if module_kind(call.module) in ("norm", "norm_act") and inner.name.startswith(
                call.name + "."
            ):
                chosen[slot] = i
            continue
        by_key[call.out_key] = len(chosen)
        chosen.append(i)
    return chosen


def _feeding_activation(calls: list[ModuleCall], i: int) -> int | None:
    """The latest activation call before call i whose output is call i's input."""
    key = calls[i].in_key
    for j in range(i - 1, -1, -1):
        c = calls[j]
        if c.end < calls[i].start and c.out_key == key and is_activation(c.module):
            return j
    return None
