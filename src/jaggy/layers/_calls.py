"""Recording every module call of one forward pass, and tapping chosen calls later.

A module can run more than once per forward pass (torchvision's ResNet blocks call one `relu`
twice), so a call is identified by (module name, call number within the pass). Tensors are
identified by (storage pointer, version counter, shape): the version counter tells an in-place
activation's output from its input, and holding a reference to every recorded tensor during the
probe keeps the allocator from reusing a pointer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

TensorKey = tuple[int, int, tuple[int, ...]]


def tensor_key(t: torch.Tensor) -> TensorKey:
    return (t.data_ptr(), t._version, tuple(t.shape))


def first_tensor(args) -> torch.Tensor | None:
    """The first tensor among a module's positional inputs (or the output itself)."""
    if isinstance(args, torch.Tensor):
        return args
    if isinstance(args, (tuple, list)):
        for a in args:
            if isinstance(a, torch.Tensor):
                return a
    return None


@dataclass
class ModuleCall:
    """One module call of the probe pass. Orders count hook events (pre and post share one
    counter), so a call that starts after and ends before another ran inside it."""

    name: str
    module: nn.Module
    call: int
    start: int
    end: int = -1
    in_key: TensorKey | None = None
    in_shape: tuple[int, ...] | None = None
    out_key: TensorKey | None = None
    out_shape: tuple[int, ...] | None = None

    def ran_inside(self, other: ModuleCall) -> bool:
        return other.start < self.start and self.end < other.end


def record_calls(model: nn.Module, x: torch.Tensor) -> tuple[list[ModuleCall], object]:
    """Run `model(x)` once under `torch.no_grad()` and return every module call (in the order
    the calls ended) and the model's output."""
    calls: list[ModuleCall] = []
    open_calls: dict[int, list[ModuleCall]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    keep: list[torch.Tensor] = []  # holds every seen tensor so pointers are not reused
    clock = [0]
    names = {id(m): n for n, m in model.named_modules()}

    def pre(module, args):
        t = first_tensor(args)
        clock[0] += 1
        call = ModuleCall(names[id(module)], module, counts[id(module)], clock[0])
        counts[id(module)] += 1
        if t is not None:
            keep.append(t)
            call.in_key, call.in_shape = tensor_key(t), tuple(t.shape)
        open_calls[id(module)].append(call)

    def post(module, args, output):
        clock[0] += 1
        call = open_calls[id(module)].pop()
        call.end = clock[0]
        if isinstance(output, torch.Tensor):
            keep.append(output)
            call.out_key, call.out_shape = tensor_key(output), tuple(output.shape)
        calls.append(call)

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    try:
        with torch.no_grad():
            output = model(x)
    finally:
        for h in handles:
            h.remove()
    return calls, output


InputTap = Callable[[torch.Tensor], None]
OutputTap = Callable[[torch.Tensor], None]


class CallTaps:
    """Forward hooks that hand chosen module calls' inputs or outputs to callbacks.

    `on_input[(name, call)]` receives the call's first input before the module runs (so an
    in-place module cannot have changed it yet); `on_output[(name, call)]` receives the output
    as soon as the call returns (before any later in-place operation). Callbacks must not keep
    the tensors without cloning them. Use as a context manager; call `start_pass()` before
    each forward pass.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.on_input: dict[tuple[str, int], InputTap] = {}
        self.on_output: dict[tuple[str, int], OutputTap] = {}
        self._counts: dict[str, int] = defaultdict(int)
        self._open: dict[str, list[int]] = defaultdict(list)
        self._handles: list = []

    def __enter__(self) -> CallTaps:
        wanted = {name for name, _ in self.on_input} | {name for name, _ in self.on_output}
        for name, module in self.model.named_modules():
            if name in wanted:
                self._handles.append(module.register_forward_pre_hook(self._pre_hook(name)))
                self._handles.append(module.register_forward_hook(self._post_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def start_pass(self) -> None:
        self._counts.clear()
        self._open.clear()

    def _pre_hook(self, name: str):
        def hook(module, args):
            call = self._counts[name]
            self._counts[name] += 1
            self._open[name].append(call)
            tap = self.on_input.get((name, call))
            if tap is not None:
                t = first_tensor(args)
                if t is not None:
                    tap(t)

        return hook

    def _post_hook(self, name: str):
        def hook(module, args, output):
            call = self._open[name].pop()
            tap = self.on_output.get((name, call))
            if tap is not None and isinstance(output, torch.Tensor):
                tap(output)

        return hook
