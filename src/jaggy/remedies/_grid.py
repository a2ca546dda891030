"""Convolution and pooling layers with explicit padding that can run densely (stride 1) on the
sampling grid of a strided layer.

A strided layer L_s equals "the same layer at stride 1, then keep every s-th output" when the
stride-1 version is padded so that its output at position s*i sees exactly the input window
that L_s's output i sees. These layers do that padding explicitly, for PyTorch's symmetric
padding and for TensorFlow's 'SAME' padding (whose before/after split depends on the input
size and on the stride, so a 'SAME' layer turned to stride 1 must keep the strided layer's
split, not take the stride-1 one). The remedies then put a BlurPool or a polyphase pick where
the plain subsampling was. With `subsample` = plain subsampling the composite reproduces the
original layer exactly (tested).

Conventions: pixels; pads are (left, right, top, bottom); `grid_stride` is the stride of the
original layer (its sampling grid), `stride` the stride actually used (the same, or 1 on the
axes run densely). The dense output has `dense_length(...)` pixels per axis: the input size
when that still yields the original number of samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._padding import (
    TORCH_CONV_MODES,
    dense_length,
    normalize_pad_mode,
    output_length,
    pad2d,
    same_pads,
)


def _pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = tuple(value)
    return int(first), int(second)


class _GridGeometry:
    """Padding arithmetic shared by the grid layers (attributes set by the subclasses)."""

    grid_stride: tuple[int, int]
    grid_padding: tuple[int, int]
    same: bool
    pad_mode: str

    def _set_grid(self, stride, grid_stride, padding, same: bool, pad_mode: str) -> None:
        """Record the original layer's sampling grid (default: `stride`) and its padding."""
        self.grid_stride = _pair(grid_stride if grid_stride is not None else stride)
        self.grid_padding = (0, 0) if same else _pair(padding)
        self.same = bool(same)
        self.pad_mode = normalize_pad_mode(pad_mode)

    def _kernel_span(self) -> tuple[int, int]:
        kernel = _pair(self.kernel_size)
        dilation = _pair(getattr(self, "dilation", 1))
        return dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1

    def _ceil_mode(self) -> bool:
        return bool(getattr(self, "ceil_mode", False))

    def _axis_pads(self, size: int, axis: int) -> tuple[int, int, int, int]:
        """(before, after) used on one axis, and the original layer's (before, after)."""
        span = self._kernel_span()[axis]
        grid = self.grid_stride[axis]
        if self.same:
            kernel = _pair(self.kernel_size)[axis]
            dilation = _pair(getattr(self, "dilation", 1))[axis]
            before, after = same_pads(size, kernel, grid, dilation)
        else:
            before = after = self.grid_padding[axis]
        count = output_length(size, span, grid, before, after, self._ceil_mode())
        if _pair(self.stride)[axis] == 1 and grid > 1:
            # Dense: output j sees the window of the strided output j / grid.
            outputs, step = dense_length(size, grid, count), 1
        else:
            # Strided: padding past the last window the layer reads is dropped.
            outputs, step = count, grid
        used_after = step * (outputs - 1) + span - size - before
        return before, used_after, before, after

    def grid_pads(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) padding for an input of height x width pixels."""
        top, bottom, _, _ = self._axis_pads(height, 0)
        left, right, _, _ = self._axis_pads(width, 1)
        return left, right, top, bottom

    def original_pads(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The padding of the original layer (before dense conversion)."""
        _, _, top, bottom = self._axis_pads(height, 0)
        _, _, left, right = self._axis_pads(width, 1)
        return left, right, top, bottom

    def _grid_repr(self) -> str:
        padding = "same(TF)" if self.same else str(self.grid_padding)
        dense = tuple(_pair(self.stride)) != tuple(self.grid_stride)
        grid = f"dense on grid_stride={self.grid_stride}, " if dense else ""
        return f"{grid}padding={padding}, pad_mode={self.pad_mode}"


class GridConv2d(_GridGeometry, nn.Conv2d):
    """A Conv2d with explicit padding (symmetric or TensorFlow 'SAME' for `grid_stride`) in
    any PAD_MODE, optionally evaluated densely and followed (or, for 1x1 kernels without
    padding, preceded) by a `subsample` module.

    It keeps nn.Conv2d's parameters and their names, so state dicts stay interchangeable with
    the layer it replaces.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        *,
        grid_stride=None,
        same: bool = False,
        pad_mode: str = "zero",
        device=None,
        dtype=None,
    ):
        mode = normalize_pad_mode(pad_mode)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=0 if same else _pair(padding),
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=TORCH_CONV_MODES[mode],
            device=device,
            dtype=dtype,
        )
        self._set_grid(stride, grid_stride, padding, same, mode)
        self.subsample: nn.Module | None = None
        self.subsample_first = False

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, *, dense: bool, pad_mode: str | None = None) -> GridConv2d:
        """A GridConv2d sharing `conv`'s parameters (not copies). `conv` is an nn.Conv2d,
        a timm Conv2dSame / Conv2dSameExport (TF 'SAME') or a GridConv2d."""
        if isinstance(conv, GridConv2d):
            same, padding, mode = conv.same, conv.grid_padding, conv.pad_mode
            grid = conv.grid_stride
        elif _is_tf_same_conv(conv):
            same, padding, mode, grid = True, (0, 0), "zero", _pair(conv.stride)
        else:
            if isinstance(conv.padding, str):
                same, padding = conv.padding == "same", (0, 0)
            else:
                same, padding = False, _pair(conv.padding)
            mode = normalize_pad_mode(conv.padding_mode)
            grid = _pair(conv.stride)
        stride = tuple(1 for _ in grid) if dense else grid
        new = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=stride,
            padding=padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            grid_stride=grid,
            same=same,
            pad_mode=pad_mode or mode,
            device="meta",
        )
        new.weight = conv.weight
        new.bias = conv.bias
        new.train(conv.training)
        if isinstance(conv, GridConv2d) and conv.subsample is not None:
            new.subsample = conv.subsample
            new.subsample_first = conv.subsample_first
        return new

    @property
    def pointwise(self) -> bool:
        """A 1x1 kernel without padding: subsampling commutes with it."""
        return _pair(self.kernel_size) == (1, 1) and not self.same and self.grid_padding == (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.subsample is not None and self.subsample_first:
            x = self.subsample(x)
        left, right, top, bottom = self.grid_pads(*x.shape[-2:])
        if self.pad_mode == "zero" and left == right >= 0 and top == bottom >= 0:
            y = F.conv2d(
                x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups
            )
        else:
            x = pad2d(x, (left, right, top, bottom), self.pad_mode)
            y = F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        if self.subsample is not None and not self.subsample_first:
            y = self.subsample(y)
        return y

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, {self._grid_repr()}"
        )
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.subsample is not None:
            text += ", subsample=" + ("before" if self.subsample_first else "after")
        return text


class _GridPool(_GridGeometry):
    """`from_pool` of the grid pooling layers; each says which of the pool's own arguments
    follow (kernel_size, stride, padding) in its constructor."""

    @staticmethod
    def _pool_arguments(pool: nn.Module, same: bool) -> tuple:
        raise NotImplementedError

    @classmethod
    def from_pool(cls, pool: nn.Module, *, dense: bool, pad_mode: str | None = None):
        """The grid version of `pool` (an nn.MaxPool2d / nn.AvgPool2d, timm's TF 'SAME'
        pools or a grid pool), densely evaluated with `dense`."""
        same, padding, mode, grid = _pool_geometry(pool)
        new = cls(
            pool.kernel_size,
            (1, 1) if dense else grid,
            padding,
            *cls._pool_arguments(pool, same),
            grid_stride=grid,
            same=same,
            pad_mode=pad_mode or mode,
        )
        new.train(pool.training)
        return new


class GridMaxPool2d(_GridPool, nn.MaxPool2d):
    """MaxPool2d with explicit padding (-inf for `zero`), optionally dense on a strided grid."""

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        dilation=1,
        ceil_mode: bool = False,
        *,
        grid_stride=None,
        same: bool = False,
        pad_mode: str = "zero",
    ):
        stride = kernel_size if stride is None else stride
        super().__init__(
            kernel_size, stride, 0, dilation, return_indices=False, ceil_mode=ceil_mode
        )
        self._set_grid(stride, grid_stride, padding, same, pad_mode)

    @staticmethod
    def _pool_arguments(pool: nn.MaxPool2d, same: bool) -> tuple:
        return pool.dilation, pool.ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad2d(x, self.grid_pads(*x.shape[-2:]), self.pad_mode, value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride, 0, self.dilation, ceil_mode=False)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, {self._grid_repr()}"


class GridAvgPool2d(_GridPool, nn.AvgPool2d):
    """AvgPool2d with explicit padding, optionally dense on a strided grid.

    With `zero` padding the divisor follows the original layer (`count_include_pad`, the
    clipped last window of ceil mode); with the other modes the padded pixels are image
    content and every window divides by its full size.
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
        *,
        grid_stride=None,
        same: bool = False,
        pad_mode: str = "zero",
    ):
        stride = kernel_size if stride is None else stride
        super().__init__(
            kernel_size,
            stride,
            0,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
            divisor_override=divisor_override,
        )
        self._set_grid(stride, grid_stride, padding, same, pad_mode)

    @staticmethod
    def _pool_arguments(pool: nn.AvgPool2d, same: bool) -> tuple:
        # timm's AvgPool2dSame pads with zeros that count in the divisor.
        include = True if same and not isinstance(pool, GridAvgPool2d) else pool.count_include_pad
        return pool.ceil_mode, include, pool.divisor_override

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pads = self.grid_pads(height, width)
        summed = F.avg_pool2d(
            pad2d(x, pads, self.pad_mode),
            self.kernel_size,
            self.stride,
            0,
            False,
            True,
            self.divisor_override,
        )
        if self.divisor_override is not None or self.pad_mode != "zero":
            return summed
        # Fraction of each window that the original layer counts in its divisor.
        counted = torch.ones(1, 1, height, width, dtype=x.dtype, device=x.device)
        if self.count_include_pad:
            original = self.original_pads(height, width)
            counted = pad2d(counted, tuple(max(p, 0) for p in original), "zero", value=1.0)
            extra = tuple(p - max(o, 0) for p, o in zip(pads, original, strict=True))
            counted = pad2d(counted, extra, "zero")
        else:
            counted = pad2d(counted, pads, "zero")
        fraction = F.avg_pool2d(counted, self.kernel_size, self.stride, 0, False, True)
        return summed / fraction.clamp_min(1e-12)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, {self._grid_repr()}"


def _pool_geometry(pool: nn.Module) -> tuple[bool, tuple[int, int], str, tuple[int, int]]:
    """(TF 'SAME'?, symmetric padding, pad mode, original stride) of a pooling layer."""
    if isinstance(pool, (GridMaxPool2d, GridAvgPool2d)):
        return pool.same, pool.grid_padding, pool.pad_mode, pool.grid_stride
    grid = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
    if _is_tf_same_pool(pool):
        return True, (0, 0), "zero", grid
    return False, _pair(pool.padding), "zero", grid


def _is_tf_same_conv(conv: nn.Module) -> bool:
    try:
        from timm.layers.conv2d_same import Conv2dSame, Conv2dSameExport
    except ImportError:  # timm is a dependency, but keep the layers usable without it
        return False
    return isinstance(conv, (Conv2dSame, Conv2dSameExport))


def _is_tf_same_pool(pool: nn.Module) -> bool:
    try:
        from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame
    except ImportError:
        return False
    return isinstance(pool, (AvgPool2dSame, MaxPool2dSame))


def is_known_conv(conv: nn.Module) -> bool:
    """Convolutions whose forward these layers reproduce exactly (so they may be replaced)."""
    return type(conv) is nn.Conv2d or isinstance(conv, GridConv2d) or _is_tf_same_conv(conv)


def is_known_pool(pool: nn.Module) -> bool:
    """Pooling layers whose forward these layers reproduce exactly."""
    if isinstance(pool, nn.MaxPool2d) and pool.return_indices:
        return False
    return (
        type(pool) in (nn.MaxPool2d, nn.AvgPool2d)
        or isinstance(pool, (GridMaxPool2d, GridAvgPool2d))
        or _is_tf_same_pool(pool)
    )
