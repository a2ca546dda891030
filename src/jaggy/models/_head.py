"""A model's classifier layer: find it, and give it a new number of classes."""

from __future__ import annotations

from torch import nn

from ..errors import ModelSpecError


def classifier_layer(module: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """(parent, attribute, layer) of the final linear classifier: timm's `get_classifier()`
    when the model has it, else the last `nn.Linear` in module order."""
    target = None
    get = getattr(module, "get_classifier", None)
    if callable(get):
        found = get()
        if isinstance(found, nn.Linear):
            target = found
    if target is None:
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ModelSpecError(
                f"{type(module).__name__} has no nn.Linear classifier to resize; give a model "
                "whose last layer is linear"
            )
        target = linears[-1]
    for parent in module.modules():
        for name, child in parent.named_children():
            if child is target:
                return parent, name, target
    raise ModelSpecError(f"cannot locate the classifier of {type(module).__name__}")


def replace_head(module: nn.Module, num_classes: int) -> nn.Module:
    """Replace the final linear classifier by a freshly initialised one with `num_classes`
    outputs (same inputs, device and dtype). Returns the new layer."""
    parent, name, old = classifier_layer(module)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    new.to(device=old.weight.device, dtype=old.weight.dtype)
    setattr(parent, name, new)
    if hasattr(module, "num_classes"):
        try:
            module.num_classes = num_classes
        except (AttributeError, TypeError):
            pass
    return new
