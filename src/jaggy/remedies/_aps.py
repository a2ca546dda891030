"""Adaptive polyphase sampling (APS; Chaman & Dokmanić, CVPR 2021, "Truly shift-invariant
convolutional neural networks").

Subsampling by s keeps one of the s x s polyphase components of a feature map (the pixels
(a + s*i, b + s*j) for one offset (a, b)). Plain subsampling always keeps (0, 0), so a 1-pixel
shift of the input swaps the component that survives. APS keeps the component with the largest
l2 norm instead. Under a circular shift of the map the components are permuted (and rolled by
whole coarse pixels) and their norms move with them, so the choice follows the shift and the
output is the same map, circularly shifted on the coarse grid: with circularly padded stride-1
layers a whole network becomes exactly invariant to circular shifts of its input.

One choice per resolution. Two branches that are subsampled separately and then added (a
residual block's main path and its strided shortcut) must keep the same component, or their
sum stops moving as one map. Within one forward pass of the converted model, all APS layers
that subsample maps of the same size with the same stride share the choice made by the first
of them (the APS paper passes the main path's choice to the shortcut; sharing by resolution
is the same rule without knowing the block structure). This is exact whenever every map of a
given size moves by the same shift, which holds for classification networks whose resolution
only decreases. Outside a forward pass of the converted root model (a submodule called on its
own) each layer chooses for itself.
"""

from __future__ import annotations

import torch
from torch import nn

from ._padding import pad2d


class PhaseContext:
    """The polyphase choices made during one forward pass of a model, by map size.

    Installed on the root module as a forward pre-hook (`begin`) and forward hook (`end`);
    not thread-safe: one forward pass of a model at a time.
    """

    def __init__(self) -> None:
        self.active = False
        self.choices: dict[tuple, torch.Tensor] = {}

    def begin(self, module: nn.Module, args) -> None:
        self.active = True
        self.choices.clear()

    def end(self, module: nn.Module, args, output) -> None:
        self.active = False
        self.choices.clear()

    def attach(self, root: nn.Module) -> None:
        root.register_forward_pre_hook(self.begin)
        root.register_forward_hook(self.end)


class PolyphaseDownsample2d(nn.Module):
    """Keep, per image, the polyphase component with the largest l2 norm (APS).

    Conventions: the input [B, C, H, W] is first extended at the bottom/right to multiples of
    the stride (wrapping around when `circular`, else with zeros), so the output is
    [B, C, ceil(H / sy), ceil(W / sx)]. The component with offset (a, b) holds the pixels
    (a + sy*i, b + sx*j); ties go to the first in APS's order, (0, 0), (1, 0), (0, 1), (1, 1)
    for stride 2 (row offset fastest, as truly_shift_invariant_cnns' `permute_polyphase`).
    Exact invariance to circular shifts needs H and W to be multiples of the network's total
    stride.

    Args:
        stride: subsampling factor (int or (sy, sx)).
        circular: wrap around when the map must be extended to a multiple of the stride.
        context: a shared PhaseContext (see the module docstring); None = always choose here.
    """

    def __init__(
        self,
        stride: int | tuple[int, int] = 2,
        circular: bool = True,
        context: PhaseContext | None = None,
    ):
        super().__init__()
        self.stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        self.circular = bool(circular)
        self.context = context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sy, sx = self.stride
        batch, channels, height, width = x.shape
        rows, cols = -(-height // sy), -(-width // sx)
        if (rows * sy, cols * sx) != (height, width):
            x = pad2d(
                x,
                (0, cols * sx - width, 0, rows * sy - height),
                "circular" if self.circular else "zero",
            )
        grid = x.reshape(batch, channels, rows, sy, cols, sx)
        phase = self._phase(grid)
        images = torch.arange(batch, device=x.device)
        # Advanced indices on dims 0, 3, 5 -> result [batch, channels, rows, cols].
        return grid[images, :, :, phase % sy, :, phase // sy]

    def _phase(self, grid: torch.Tensor) -> torch.Tensor:
        """Index b*sy + a of the chosen component (a, b), per image, as a [B] long tensor."""
        context = self.context
        key = (tuple(grid.shape[2:]), grid.shape[0], grid.device)
        if context is not None and context.active and key in context.choices:
            return context.choices[key]
        norms = torch.linalg.vector_norm(grid, dim=(1, 2, 4))  # [B, sy, sx]
        phase = norms.transpose(1, 2).flatten(1).argmax(dim=1)
        if context is not None and context.active:
            context.choices[key] = phase
        return phase

    def extra_repr(self) -> str:
        stride = self.stride[0] if self.stride[0] == self.stride[1] else self.stride
        return f"stride={stride}, circular={self.circular}, criterion=l2"
