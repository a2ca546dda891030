"""Model surgery: replace every subsampling of a model by an anti-aliased (BlurPool) or adaptive
(APS) one, and switch padding to circular.

Rules (Zhang, ICML 2019; Chaman & Dokmanić, CVPR 2021):
- MaxPool(stride s) -> MaxPool(stride 1) on the same grid, then the subsampler.
- Conv(stride s) -> Conv(stride 1) on the same grid (TF 'SAME' padding keeps the strided
  layer's before/after split), then the subsampler after the convolution's norm and
  activation, as antialiased-cnns and APS place it (Conv(stride 1) -> BN -> ReLU ->
  Blur(stride s)). The norm and activation are found in the model's structure: the siblings
  that follow the conv in an nn.Sequential, the norm-act layer (timm's BatchNormAct2d & co.,
  which carry their activation as `.act`) registered right after it, or timm's own
  anti-aliasing slot `aa` of the block. Otherwise the block's forward is traced (torch.fx,
  its children as leaves): when the conv's output goes, alone, through a norm and/or an
  activation into one module (torchvision's BasicBlock: conv1 -> bn1 -> relu -> conv2), the
  subsampler runs on that module's input (a forward pre-hook), which is the same place. Where
  the forward cannot be traced, or its output goes elsewhere, the subsampler follows the
  convolution directly, with a RemedyWarning saying so (in eval mode a per-channel affine norm
  commutes with a blur whose taps sum to 1, so only the activation's place differs). For a
  1x1 convolution without padding it goes before the conv, as Zhang's shortcuts have it
  (Blur -> Conv1x1): the same result for s^2 less work.
- AvgPool(stride s) -> BlurPool(s) (blurpool); -> AvgPool(stride 1) then APS (aps).
- A BlurPool(stride s) already in the model -> blur at stride 1, then APS (aps).

State-dict keys and tensors never change: parameters are shared with the new layers and every
added layer keeps only non-persistent buffers, so a checkpoint of the converted model loads
into the original architecture (and vice versa) and the conversion can be re-applied.
The conversion is made in place; the (possibly new) root module is returned.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable

import torch
from torch import nn

from ..errors import ArgumentError
from ._aps import PhaseContext, PolyphaseDownsample2d
from ._blur import BlurPool2d, check_filter_size
from ._grid import GridAvgPool2d, GridConv2d, GridMaxPool2d, is_known_conv, is_known_pool
from ._padding import normalize_pad_mode


class RemedyWarning(UserWarning):
    """A layer that a remedy could not convert (the model is then only partly converted)."""


Subsampler = Callable[[tuple[int, int]], nn.Module]


def blurpool(model: nn.Module, filt_size: int = 4, pad: str = "reflect") -> nn.Module:
    """Anti-alias every subsampling of `model` with a binomial BlurPool (Zhang, ICML 2019).

    Conventions: see the module docstring for the rules; BlurPool padding and output sizes in
    `BlurPool2d`. Output shapes and state-dict keys are those of the original model, and
    `filt_size=1` reproduces the original model's outputs exactly.

    Args:
        model: any PyTorch model; converted in place.
        filt_size: binomial filter taps, 1 (no blur) to 7; 4 = [1, 3, 3, 1] is Zhang's default.
        pad: reflect | replicate | zero | circular, the blur's border handling.

    Returns:
        The converted model (the same object unless `model` itself was a strided layer).
    """
    filt_size = check_filter_size(filt_size)
    mode = normalize_pad_mode(pad)
    surgery = _Surgery(model)

    def blur(stride: tuple[int, int]) -> nn.Module:
        return BlurPool2d(filt_size, stride, mode)

    surgery.subsample_everywhere(blur, average="blur", blurred="keep", pool_mode=None)
    return surgery.finish("blurpool")


def aps(model: nn.Module, circular: bool = True, filt_size: int = 1) -> nn.Module:
    """Replace every subsampling of `model` by adaptive polyphase sampling (Chaman & Dokmanić,
    CVPR 2021): compute the layer densely, keep the polyphase component with the largest norm.

    Combined with `circular_padding`, the converted network is exactly invariant to circular
    shifts (`torch.roll`) of inputs whose sides are multiples of its total stride; residual
    branches share one choice per resolution (see `PolyphaseDownsample2d`).

    Args:
        model: any PyTorch model; converted in place.
        circular: the layers that APS rebuilds (dense pooling, the optional blur, the
            extension of odd-sized maps) pad by wrapping around; convolutions keep their own
            padding (use `circular_padding` for those).
        filt_size: an optional binomial blur before the polyphase choice (APS with a
            low-pass filter); 1 = none.

    Returns:
        The converted model (the same object unless `model` itself was a strided layer).
    """
    filt_size = check_filter_size(filt_size)
    surgery = _Surgery(model)
    context = _existing_context(model) or PhaseContext()
    blur_mode = "circular" if circular else "reflect"

    def polyphase(stride: tuple[int, int]) -> nn.Module:
        layer = PolyphaseDownsample2d(stride, circular=circular, context=context)
        if filt_size == 1:
            return layer
        return nn.Sequential(BlurPool2d(filt_size, 1, blur_mode), layer)

    surgery.subsample_everywhere(
        polyphase, average="dense", blurred="polyphase", pool_mode="circular" if circular else None
    )
    root = surgery.finish("aps")
    if _existing_context(root) is context and context not in _attached_contexts(root):
        context.attach(root)
    return root


def circular_padding(model: nn.Module) -> nn.Module:
    """Make every padded convolution, pooling, blur and explicit pad layer of `model` wrap
    around (circular padding), keeping each layer's padding amounts and output sizes.

    With circular padding a stride-1 layer commutes exactly with `torch.roll`; subsampling
    still breaks that unless it is adaptive (`aps`). Valid (unpadded) convolutions with
    kernels larger than 1 shrink the map and cannot wrap; they are reported in a
    RemedyWarning, as are layer types whose forward ignores the padding mode.

    Returns:
        The converted model (the same object unless `model` itself was a padded layer).
    """
    surgery = _Surgery(model)
    for name, module in surgery.snapshot():
        if isinstance(module, GridConv2d):
            module.pad_mode, module.padding_mode = "circular", "circular"
        elif isinstance(module, nn.Conv2d):
            if not is_known_conv(module):
                if _has_padding(module):
                    surgery.skip(name, module, "its forward may ignore padding_mode")
                continue
            if _has_padding(module) or _is_same(module):
                surgery.replace(
                    module, GridConv2d.from_conv(module, dense=False, pad_mode="circular")
                )
            elif max(module.kernel_size) > 1:
                surgery.skip(name, module, "valid convolution (no padding)")
        elif isinstance(module, (GridMaxPool2d, GridAvgPool2d, BlurPool2d)):
            module.pad_mode = "circular"
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            if not is_known_pool(module):
                surgery.skip(name, module, "unsupported pooling variant")
            elif _has_padding(module) or _is_same(module):
                new = GridMaxPool2d if isinstance(module, nn.MaxPool2d) else GridAvgPool2d
                surgery.replace(module, new.from_pool(module, dense=False, pad_mode="circular"))
        elif isinstance(module, PolyphaseDownsample2d):
            module.circular = True
        elif _is_timm_blurpool(module):
            module.pad_mode = "circular"
        elif isinstance(
            module, (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d)
        ):
            surgery.replace(module, nn.CircularPad2d(module.padding))
    return surgery.finish("circular")


class _Surgery:
    """Where every module sits in the model (a module may sit in several places), and the
    edits made so far."""

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise ArgumentError(f"a remedy needs a torch.nn.Module, got {type(model).__name__}")
        self.root = model
        self.places: dict[int, list[tuple[nn.Module, str]]] = defaultdict(list)
        for parent in model.modules():
            for name, child in parent._modules.items():
                if child is not None:
                    self.places[id(child)].append((parent, name))
        tensor = next(iter(model.parameters()), None)
        if tensor is None:
            tensor = next(iter(model.buffers()), None)
        self.device = tensor.device if tensor is not None else torch.device("cpu")
        self.skipped: list[str] = []
        self.misplaced: list[str] = []
        self._traced: dict[int, _TracedBlock | str] = {}

    def snapshot(self) -> list[tuple[str, nn.Module]]:
        return list(self.root.named_modules())

    def uses(self, module: nn.Module) -> int:
        return len(self.places[id(module)])

    def replace(self, old: nn.Module, new: nn.Module) -> None:
        """Put `new` wherever `old` sits (same attribute names: state-dict keys stay). A
        subsampler that runs on `old`'s input moves to `new`; a pre-hook that runs `old` as a
        subsampler runs `new`."""
        new.train(old.training)
        new.to(self.device)
        if old is self.root:
            self.root = new
        for parent, name in self.places.pop(id(old), []):
            setattr(parent, name, new)
            self.places[id(new)].append((parent, name))
        for hook in list(old._forward_pre_hooks.values()):
            if isinstance(hook, SubsampleInput):
                new.register_forward_pre_hook(hook)
        for module in self.root.modules():
            for hook in module._forward_pre_hooks.values():
                if isinstance(hook, SubsampleInput) and hook.subsampler is old:
                    hook.subsampler = new

    def append(self, owner: nn.Module, attr: str, layer: nn.Module) -> None:
        """Run `layer` right after `owner.attr` (a stateless module, None or Identity)."""
        current = getattr(owner, attr, None)
        layer.to(self.device)
        if current is None or isinstance(current, nn.Identity):
            layer.train(owner.training)
            setattr(owner, attr, layer)
            return
        chained = nn.Sequential(current, layer).train(current.training)
        setattr(owner, attr, chained)
        self.places[id(current)] = [(chained, "0")]
        self.places[id(chained)] = [(owner, attr)]

    def skip(self, name: str, module: nn.Module, why: str) -> None:
        self.skipped.append(f"{name or '<root>'} ({type(module).__name__}: {why})")

    def finish(self, remedy: str) -> nn.Module:
        if self.skipped:
            listed = "; ".join(self.skipped[:8])
            more = f"; and {len(self.skipped) - 8} more" if len(self.skipped) > 8 else ""
            warnings.warn(f"{remedy}: left unchanged: {listed}{more}", RemedyWarning, stacklevel=3)
        if self.misplaced:
            listed = "; ".join(self.misplaced[:8])
            more = f"; and {len(self.misplaced) - 8} more" if len(self.misplaced) > 8 else ""
            warnings.warn(
                f"{remedy}: subsampling placed right after the strided convolution, before its "
                f"norm and activation, where the model's forward does not show them: "
                f"{listed}{more}",
                RemedyWarning,
                stacklevel=3,
            )
        return self.root

    def subsample_everywhere(
        self, make: Subsampler, *, average: str, blurred: str, pool_mode: str | None
    ) -> None:
        """Replace every strided layer's subsampling by `make(stride)`.

        average: 'blur' (AvgPool -> make(stride)) or 'dense' (AvgPool at stride 1, then make).
        blurred: 'keep' existing BlurPools or turn them to 'polyphase' (blur at stride 1,
            then make).
        pool_mode: padding mode of the rebuilt dense pools (None: the pool's own).
        """
        for name, module in self.snapshot():
            stride = _stride_of(module)
            if stride is None or stride == (1, 1):
                continue
            if isinstance(module, nn.Conv2d):
                self._conv(name, module, make(stride))
            elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
                if not is_known_pool(module):
                    self.skip(name, module, "unsupported pooling variant")
                elif isinstance(module, nn.MaxPool2d):
                    dense = GridMaxPool2d.from_pool(module, dense=True, pad_mode=pool_mode)
                    self.replace(module, nn.Sequential(dense, make(stride)))
                elif average == "blur":
                    self.replace(module, make(stride))
                else:
                    dense = GridAvgPool2d.from_pool(module, dense=True, pad_mode=pool_mode)
                    self.replace(module, nn.Sequential(dense, make(stride)))
            elif isinstance(module, BlurPool2d) or _is_timm_blurpool(module):
                if blurred == "polyphase":
                    mode = normalize_pad_mode(module.pad_mode)
                    blur = BlurPool2d(module.filt_size, 1, pool_mode or mode)
                    self.replace(module, nn.Sequential(blur, make(stride)))
            elif isinstance(module, PolyphaseDownsample2d):
                continue
            elif _is_subsampling_leaf(module):
                self.skip(name, module, f"stride {stride} of an unsupported layer type")

    def _conv(self, name: str, conv: nn.Conv2d, subsampler: nn.Module) -> None:
        slot = self._slot_after(conv) if self.uses(conv) == 1 else None
        reader = None
        if slot is None and not _is_pointwise(conv) and self.uses(conv) == 1:
            reader = self._reader_after(name, conv)
        if is_known_conv(conv):
            dense = GridConv2d.from_conv(conv, dense=True)
            if slot is None and reader is None:
                dense.subsample = subsampler
                dense.subsample_first = dense.pointwise
            self.replace(conv, dense)
        else:
            # A convolution class with its own forward (weight standardisation, ...): run it at
            # stride 1 in place; its padding is assumed symmetric, as nn.Conv2d's.
            conv.stride = (1, 1)
            if slot is None and reader is None:
                subsampler.to(self.device)
                subsampler.train(conv.training)
                conv.add_module("subsample", subsampler)
                conv.register_forward_hook(_run_subsample)
        if slot is not None:
            self.append(*slot, subsampler)
        elif reader is not None:
            self._subsample_input(*reader, subsampler)

    def _reader_after(self, name: str, conv: nn.Module) -> tuple[nn.Module, str] | None:
        """(block, path) of the one module that reads the conv's output after its norm and
        activation, in the forward of the block that holds the conv; None (and the reason
        recorded) when the forward cannot be traced or the output goes elsewhere."""
        ((parent, attr),) = self.places[id(conv)]
        if isinstance(parent, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            self.misplaced.append(f"{name} (its container has no forward of its own to trace)")
            return None
        block = self._traced.get(id(parent))
        if block is None:
            block = _TracedBlock.trace(parent)
            self._traced[id(parent)] = block
        if isinstance(block, str):
            self.misplaced.append(f"{name} ({type(parent).__name__}'s forward: {block})")
            return None
        found, why = block.reader_after(attr)
        if found is None:
            if why:
                self.misplaced.append(f"{name} ({why})")
            return None
        reader = parent.get_submodule(found)
        if self.uses(reader) != 1:
            self.misplaced.append(f"{name} (the module after its activation is shared)")
            return None
        return parent, found

    def _subsample_input(self, block: nn.Module, path: str, subsampler: nn.Module) -> None:
        """Run `subsampler` on the input of `block.path` (registered on `block`, so it moves
        and switches mode with the model; it has no persistent state, so keys stay)."""
        subsampler.to(self.device)
        subsampler.train(block.training)
        slot = f"{path.replace('.', '_')}_input_subsample"
        while hasattr(block, slot):
            slot += "_"
        block.add_module(slot, subsampler)
        reader = block.get_submodule(path)
        reader.register_forward_pre_hook(SubsampleInput(subsampler))
        self.places[id(subsampler)].append((block, slot))

    def _slot_after(self, conv: nn.Module) -> tuple[nn.Module, str] | None:
        """Where the subsampler goes so that it follows the conv's norm and activation."""
        ((parent, name),) = self.places[id(conv)]
        if not isinstance(parent, nn.Sequential) and _has_aa_slot(parent, conv):
            return parent, "aa"
        children = list(parent.named_children())
        after = children[[n for n, _ in children].index(name) + 1 :]
        if not after:
            return None
        first_name, first = after[0]
        if isinstance(parent, nn.Sequential):
            rest = after
            norm_act = None
            if _is_norm(first):
                rest = after[1:]
                if _act_child(first) is not None and self.uses(first.act) == 1:
                    if not isinstance(first.act, nn.Identity):
                        return first, "act"
                    norm_act = (first, "act")
            if rest and _is_activation(rest[0][1]) and self.uses(rest[0][1]) == 1:
                return parent, rest[0][0]
            return norm_act
        # A norm-act layer registered right after the conv, with as many channels (timm stems).
        if (
            _is_norm(first)
            and _act_child(first) is not None
            and self.uses(first) == 1
            and self.uses(first.act) == 1
            and _norm_channels(first) == getattr(conv, "out_channels", None)
        ):
            return first, "act"
        return None


class SubsampleInput:
    """Forward pre-hook: subsample a module's first input. It places the subsampler of a
    strided convolution after that conv's norm and activation, right before the one module
    that reads them (what antialiased-cnns does in torchvision's blocks: Blur before conv2)."""

    def __init__(self, subsampler: nn.Module):
        self.subsampler = subsampler

    def __call__(self, module: nn.Module, args):
        return (self.subsampler(args[0]), *args[1:])


class _TracedBlock:
    """The data flow of one block's forward between its children (torch.fx, children as
    leaves), to find what follows a strided conv."""

    def __init__(self, graph, block: nn.Module):
        self.graph = graph
        self.block = block

    @classmethod
    def trace(cls, block: nn.Module) -> _TracedBlock | str:
        """The traced block, or why it could not be traced (a string)."""
        from torch import fx

        class Leaves(fx.Tracer):
            def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
                return True

        try:
            return cls(Leaves().trace(block), block)
        except Exception as exc:  # data-dependent control flow, unsupported operations, ...
            return f"cannot be traced ({type(exc).__name__})"

    def reader_after(self, attr: str) -> tuple[str | None, str]:
        """(path, "") of the one module call that reads conv `attr`'s output after the norm
        and activation that follow it alone, or (None, why there is none)."""
        calls = [n for n in self.graph.nodes if n.op == "call_module" and n.target == attr]
        if len(calls) != 1:
            return None, "called more than once" if calls else "not called by its block's forward"
        node, modules = calls[0], dict(self.block.named_modules())
        steps = 0
        for is_step in (lambda n: _is_norm_node(n, modules), lambda n: _is_act_node(n, modules)):
            users = list(node.users)
            if len(users) == 1 and is_step(users[0]):
                node, steps = users[0], steps + 1
        if steps == 0:
            return None, ""  # nothing to move past: right after the conv is the peers' place
        users = list(node.users)
        if len(users) != 1 or users[0].op != "call_module":
            return None, "its activation's output is not read by one module"
        reader = users[0]
        if sum(n.op == "call_module" and n.target == reader.target for n in self.graph.nodes) != 1:
            return None, "the module after its activation runs more than once"
        if reader.args[:1] != (node,):
            return None, "its activation's output is not the first input of the next module"
        return reader.target, ""


_FUNCTIONAL_ACTIVATIONS = {
    "relu",
    "relu6",
    "gelu",
    "silu",
    "hardswish",
    "leaky_relu",
    "elu",
    "mish",
    "sigmoid",
    "tanh",
    "hardtanh",
    "selu",
    "celu",
    "softplus",
}


def _is_norm_node(node, modules: dict) -> bool:
    return node.op == "call_module" and _is_norm(modules[node.target])


def _is_act_node(node, modules: dict) -> bool:
    if node.op == "call_module":
        return _is_activation(modules[node.target])
    if node.op == "call_function":
        return getattr(node.target, "__name__", "").rstrip("_") in _FUNCTIONAL_ACTIVATIONS
    if node.op == "call_method":
        return str(node.target).rstrip("_") in _FUNCTIONAL_ACTIVATIONS
    return False


def _run_subsample(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
    """Forward hook: the subsampler of a convolution that runs its own forward at stride 1."""
    return module.subsample(output)


def _stride_of(module: nn.Module) -> tuple[int, int] | None:
    stride = getattr(module, "stride", None)
    if stride is None:
        return None
    if isinstance(
        module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, BlurPool2d, PolyphaseDownsample2d)
    ) or _is_timm_blurpool(module):
        if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and stride is None:
            stride = module.kernel_size
        if isinstance(stride, int):
            return stride, stride
        return tuple(int(s) for s in stride)
    if isinstance(stride, int):
        return (stride, stride) if stride > 1 else None
    if isinstance(stride, tuple) and all(isinstance(s, int) for s in stride):
        return stride if max(stride, default=1) > 1 else None
    return None


def _is_subsampling_leaf(module: nn.Module) -> bool:
    """A layer that subsamples by itself (not a block that merely records its stride)."""
    if isinstance(module, (nn.modules.conv._ConvTransposeNd, nn.Unfold, nn.Fold)):
        return False
    layer_types = (
        nn.modules.conv._ConvNd,
        nn.modules.pooling._MaxPoolNd,
        nn.modules.pooling._AvgPoolNd,
        nn.modules.pooling._LPPoolNd,
    )
    return isinstance(module, layer_types) or next(module.children(), None) is None


def _is_pointwise(conv: nn.Module) -> bool:
    """A 1x1 kernel without padding: subsampling commutes with it."""
    kernel = conv.kernel_size if isinstance(conv.kernel_size, tuple) else (conv.kernel_size,) * 2
    return tuple(kernel) == (1, 1) and not _has_padding(conv) and not _is_same(conv)


def _has_padding(module: nn.Module) -> bool:
    padding = getattr(module, "padding", 0)
    if isinstance(padding, str):
        return padding == "same"
    if isinstance(padding, int):
        return padding > 0
    return any(p > 0 for p in padding)


def _is_same(module: nn.Module) -> bool:
    from ._grid import _is_tf_same_conv, _is_tf_same_pool

    return _is_tf_same_conv(module) or _is_tf_same_pool(module)


def _is_stateless(module: nn.Module) -> bool:
    return next(module.parameters(), None) is None and next(module.buffers(), None) is None


def _is_norm(module: nn.Module) -> bool:
    return (
        isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm))
        or "norm" in type(module).__name__.lower()
    )


def _is_activation(module: nn.Module) -> bool:
    home = type(module).__module__
    return _is_stateless(module) and (
        home.startswith("torch.nn.modules.activation") or home.startswith("timm.layers.activations")
    )


def _act_child(norm: nn.Module) -> nn.Module | None:
    act = norm._modules.get("act")
    return act if act is not None and _is_stateless(act) else None


def _norm_channels(norm: nn.Module) -> int | None:
    for attr in ("num_features", "num_channels"):
        if isinstance(getattr(norm, attr, None), int):
            return getattr(norm, attr)
    weight = getattr(norm, "weight", None)
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.dim() == 1 else None


def _has_aa_slot(parent: nn.Module, conv: nn.Module) -> bool:
    """timm blocks keep an anti-aliasing slot `aa` (Identity or None when unused) that their
    forward applies right after the strided conv's norm and activation."""
    if not hasattr(parent, "aa"):
        return False
    slot = parent.aa
    if slot is not None and not isinstance(slot, nn.Identity):
        return False
    strided = [
        child
        for child in parent.children()
        if isinstance(child, nn.Conv2d) and _stride_of(child) not in (None, (1, 1))
    ]
    return strided == [conv]


def _is_timm_blurpool(module: nn.Module) -> bool:
    try:
        from timm.layers import BlurPool2d as TimmBlurPool2d
    except ImportError:
        return False
    return isinstance(module, TimmBlurPool2d)


def _existing_context(model: nn.Module) -> PhaseContext | None:
    for module in model.modules():
        if isinstance(module, PolyphaseDownsample2d) and module.context is not None:
            return module.context
    return None


def _attached_contexts(root: nn.Module) -> list[PhaseContext]:
    return [getattr(hook, "__self__", None) for hook in root._forward_pre_hooks.values()]
