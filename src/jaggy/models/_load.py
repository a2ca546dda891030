"""Resolve a model spec (`jaggy:`, `timm:`, `tv:`, `py:`) into a LoadedModel, offline."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ArgumentError, ModelSpecError
from ..remedies import apply_remedy, validate_remedies
from ._classes import imagenet_class_names
from ._embedded import EMBEDDED_MODELS, embedded_names, embedded_preprocessing, load_embedded
from ._loaded import LoadedModel, Preprocessing

OFFLINE_HINT = (
    "jaggy does not download (set JAGGY_ALLOW_DOWNLOAD=1 where a network is reachable); "
    f"use an embedded model ({', '.join(embedded_names())}), a local --checkpoint, "
    "or --random-weights"
)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. `kind` is one of jaggy, timm, tv, py."""

    kind: str
    name: str
    weights: str | None = None

    def __str__(self) -> str:
        text = f"{self.kind}:{self.name}"
        return f"{text}:{self.weights}" if self.weights else text


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse `timm:NAME`, bare `NAME`, `tv:NAME[:WEIGHTS]`, `py:pkg.mod:factory`, `jaggy:NAME`."""
    spec = spec.strip()
    if not spec:
        raise ModelSpecError("empty model spec; try jaggy:efficientnet_lite0")
    kind, sep, rest = spec.partition(":")
    if not sep:
        return ModelSpec("timm", spec)
    if kind == "jaggy":
        if rest not in EMBEDDED_MODELS:
            raise ModelSpecError(
                f"unknown embedded model '{spec}'; choose one of: {', '.join(embedded_names())}"
            )
        return ModelSpec("jaggy", rest)
    if kind == "timm":
        return ModelSpec("timm", rest)
    if kind == "tv":
        name, _, weights = rest.partition(":")
        return ModelSpec("tv", name, weights or None)
    if kind == "py":
        module, _, factory = rest.rpartition(":")
        if not module or not factory:
            raise ModelSpecError(f"'{spec}': a py: spec is py:package.module:factory")
        return ModelSpec("py", module, factory)
    raise ModelSpecError(
        f"unknown model spec kind '{kind}:' in '{spec}'; use jaggy:, timm:, tv: or py: "
        f"(e.g. {embedded_names()[0]})"
    )


def load_model(
    spec: str,
    *,
    checkpoint: str | os.PathLike | None = None,
    random_weights: bool = False,
    remedies: list[str] | tuple[str, ...] = (),
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """Build the model named by `spec`, in eval mode on `device`.

    Args:
        spec: model spec, see `parse_model_spec`.
        checkpoint: a state dict file, loaded with `weights_only=True` over the built model.
        random_weights: build the architecture without pretrained weights (diagnosis, tests).
        remedies: remedy specs (e.g. 'blurpool:4', 'aps', 'circular'), applied in order.
        device: where the module lives.
    """
    parsed = parse_model_spec(spec)
    validate_remedies(list(remedies))  # a bad remedy spec fails before the model is built
    pretrained = not random_weights and checkpoint is None
    if parsed.kind == "jaggy":
        if pretrained:
            module, prep = load_embedded(parsed.name)
        else:
            import timm

            variant = EMBEDDED_MODELS[parsed.name]["variant"]
            module = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
            prep = embedded_preprocessing(parsed.name)
        weights = "embedded" if pretrained else "random"
        classes = imagenet_class_names()
    elif parsed.kind == "timm":
        module, prep, weights = _load_timm(parsed.name, pretrained)
        classes = _class_names(getattr(module, "num_classes", 1000))
    elif parsed.kind == "tv":
        module, prep, weights, classes = _load_torchvision(parsed.name, parsed.weights, pretrained)
    else:
        module, prep = _load_python(parsed.name, parsed.weights)
        weights = "factory"
        classes = None
    if checkpoint is not None:
        _load_checkpoint(module, checkpoint)
        weights = f"checkpoint:{Path(checkpoint).name}"
    if random_weights:
        weights = "random"
    module.eval().to(device)
    if classes is None:
        classes = _class_names(_infer_num_classes(module, prep, device))
    loaded = LoadedModel(module, prep, list(classes), str(parsed), weights)
    for remedy in remedies:
        _apply_remedy(loaded, remedy)
    return loaded


def as_loaded_model(
    model: str | LoadedModel | nn.Module,
    *,
    checkpoint: str | os.PathLike | None = None,
    random_weights: bool = False,
    remedies: Sequence[str] = (),
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """A model spec is loaded; a LoadedModel is used as it is; a bare nn.Module is wrapped
    (`wrap_module`). Checkpoints, random weights and remedies apply to specs only: a model
    already built takes them when it is loaded (`jaggy.load_model(spec, remedies=[...])`)."""
    if isinstance(model, str):
        return load_model(
            model,
            checkpoint=checkpoint,
            random_weights=random_weights,
            remedies=list(remedies),
            device=device,
        )
    given = [
        name
        for name, value in (
            ("checkpoint", checkpoint),
            ("random_weights", random_weights),
            ("remedies", list(remedies)),
        )
        if value
    ]
    if given:
        raise ArgumentError(
            f"{', '.join(given)} apply to a model spec; load a built model with them instead: "
            "jaggy.load_model(spec, checkpoint=..., remedies=[...])"
        )
    if isinstance(model, LoadedModel):
        model.module.to(device).eval()
        return model
    return wrap_module(model, device=device)


def wrap_module(module: nn.Module, *, device: str | torch.device = "cpu") -> LoadedModel:
    """A user's own `nn.Module` as a LoadedModel, moved to `device` in eval mode.

    Preprocessing comes from the module (`jaggy_preprocessing`, timm's `pretrained_cfg`) or is
    the explicit, recorded default; class names follow its output width (ImageNet's for 1000).
    The spec recorded in manifests is `module:<package.Class>`.
    """
    if not isinstance(module, nn.Module):
        raise ModelSpecError(
            f"expected a model spec, a jaggy LoadedModel or a torch.nn.Module, "
            f"got {type(module).__name__}"
        )
    prep = _preprocessing_of(module)
    module.eval().to(device)
    classes = _class_names(_infer_num_classes(module, prep, device))
    kind = type(module)
    return LoadedModel(
        module, prep, classes, f"module:{kind.__module__}.{kind.__qualname__}", "module"
    )


def _class_names(n: int) -> list[str]:
    if n == 1000:
        return imagenet_class_names()
    return [f"class_{i}" for i in range(n)]


def _load_timm(name: str, pretrained: bool) -> tuple[nn.Module, Preprocessing, str]:
    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name}*")[:8]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise ModelSpecError(f"unknown timm model '{name}'{hint}; {OFFLINE_HINT}")
    if pretrained:
        try:
            with _offline_hub():
                module = timm.create_model(name, pretrained=True)
        except Exception as exc:  # timm raises many types when weights are not cached
            raise ModelSpecError(
                f"timm:{name} needs pretrained weights that are not on this machine "
                f"({type(exc).__name__}); {OFFLINE_HINT}"
            ) from exc
    else:
        module = timm.create_model(name, pretrained=False)
    cfg = timm.data.resolve_data_config({}, model=module)
    prep = Preprocessing(
        input_size=int(cfg["input_size"][-1]),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
        interpolation=str(cfg.get("interpolation", "bicubic")),
        mean=tuple(float(v) for v in cfg["mean"]),
        std=tuple(float(v) for v in cfg["std"]),
        source="timm pretrained_cfg",
    )
    return module, prep, "pretrained" if pretrained else "random"


def downloads_allowed() -> bool:
    """Downloads are off unless JAGGY_ALLOW_DOWNLOAD=1: a spec that needs the network fails at
    once with a message instead of hanging on a machine without one."""
    return os.environ.get("JAGGY_ALLOW_DOWNLOAD", "") == "1"


@contextlib.contextmanager
def _offline_hub():
    """Make the Hugging Face hub (used by timm) read only its local cache."""
    if downloads_allowed():
        yield
        return
    import huggingface_hub.constants as hub_constants

    before = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = before


def _load_torchvision(
    name: str, weights_name: str | None, pretrained: bool
) -> tuple[nn.Module, Preprocessing, str, list[str] | None]:
    from torchvision import models as tvm

    try:
        builder = tvm.get_model_builder(name)
    except ValueError as exc:
        raise ModelSpecError(f"unknown torchvision model '{name}'; {OFFLINE_HINT}") from exc
    weights_enum = tvm.get_model_weights(name)
    try:
        weights = weights_enum[weights_name or "DEFAULT"] if weights_name else weights_enum.DEFAULT
    except KeyError as exc:
        options = ", ".join(w.name for w in weights_enum)
        raise ModelSpecError(
            f"tv:{name} has no weights '{weights_name}'; options: {options}"
        ) from exc
    transform = weights.transforms()
    crop = int(transform.crop_size[0])
    resize = int(transform.resize_size[0])
    prep = Preprocessing(
        input_size=crop,
        crop_pct=crop / resize,
        interpolation=str(transform.interpolation.value),
        mean=tuple(float(v) for v in transform.mean),
        std=tuple(float(v) for v in transform.std),
        source=f"torchvision {weights}",
    )
    if not pretrained:
        return builder(weights=None), prep, "random", None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not cached.exists() and not downloads_allowed():
        raise ModelSpecError(
            f"tv:{name} needs the weights file {cached.name}, which is not in {cached.parent}; "
            f"{OFFLINE_HINT}"
        )
    module = builder(weights=weights)
    return module, prep, str(weights), list(weights.meta.get("categories") or []) or None


def _load_python(module_name: str, factory_name: str) -> tuple[nn.Module, Preprocessing]:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelSpecError(f"cannot import '{module_name}' for py:{module_name}: {exc}") from exc
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ModelSpecError(f"'{module_name}' has no callable '{factory_name}'")
    model = factory()
    if not isinstance(model, nn.Module):
        raise ModelSpecError(
            f"py:{module_name}:{factory_name} returned {type(model).__name__}, "
            "not a torch.nn.Module"
        )
    return model, _preprocessing_of(model)


def _preprocessing_of(model: nn.Module) -> Preprocessing:
    """A user model's own preprocessing: `jaggy_preprocessing` (dict), timm's `pretrained_cfg`,
    else an explicit, recorded default."""
    own = getattr(model, "jaggy_preprocessing", None)
    if isinstance(own, dict):
        return Preprocessing(**{**own, "source": own.get("source", "model.jaggy_preprocessing")})
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, dict) and "input_size" in cfg:
        return Preprocessing(
            input_size=int(cfg["input_size"][-1]),
            crop_pct=float(cfg.get("crop_pct", 0.875)),
            interpolation=str(cfg.get("interpolation", "bilinear")),
            mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
            std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
            source="model.pretrained_cfg",
        )
    return Preprocessing(source="default (the model declares none)")


def _infer_num_classes(module: nn.Module, prep: Preprocessing, device) -> int:
    side = prep.input_size
    with torch.inference_mode():
        out = module.to(device)(torch.zeros(1, 3, side, side, device=device))
    if out.ndim != 2:
        raise ModelSpecError(
            f"the model returns shape {tuple(out.shape)}; jaggy needs [batch, classes] logits"
        )
    return int(out.shape[1])


def _load_checkpoint(module: nn.Module, path: str | os.PathLike) -> None:
    path = Path(path)
    if not path.is_file():
        raise ModelSpecError(f"checkpoint '{path}' does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelSpecError(
            f"cannot load checkpoint '{path}' with weights_only=True ({exc}); "
            "save a plain state dict: torch.save(model.state_dict(), path)"
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelSpecError(f"checkpoint '{path}' does not fit the model: {exc}") from exc


def _apply_remedy(loaded: LoadedModel, remedy: str) -> None:
    apply_remedy(loaded, remedy)
