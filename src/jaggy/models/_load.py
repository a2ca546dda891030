"""Resolve a model spec (`jaggy:`, `timm:`, `tv:`, `py:`) into a LoadedModel, offline."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ArgumentError, ModelSpecError
from ..remedies import apply_remedy
from ..remedies._spec import validate_remedies
from ._classes import imagenet_class_names
from ._embedded import EMBEDDED_MODELS, embedded_names, embedded_preprocessing, load_embedded
from ._head import classifier_layer, replace_head
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
    saved = _read_checkpoint(checkpoint) if checkpoint is not None else None
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
    if saved is not None:
        state, meta = saved
        names = meta.get("class_names")
        if isinstance(names, (list, tuple)) and names:
            # a checkpoint trained with its own classes (jaggy train): the head follows it
            if _head_size(module) != len(names):
                replace_head(module, len(names))
            classes = [str(n) for n in names]
        if isinstance(meta.get("preprocessing"), dict):
            saved_prep = dict(meta["preprocessing"])
            for name in ("mean", "std"):
                if name in saved_prep:
                    saved_prep[name] = tuple(float(v) for v in saved_prep[name])
            prep = Preprocessing(**saved_prep)
        _load_state(module, state, checkpoint)
        weights = f"checkpoint:{Path(checkpoint).name}"
    if random_weights:
        weights = "random"
    problem = prep.problem()
    if problem:
        raise ModelSpecError(f"{parsed}: unusable preprocessing from {prep.source}: {problem}")
    module.eval().to(device)
    if classes is None:
        classes = _declared_or_inferred_classes(module, prep, device)
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
    classes = _declared_or_inferred_classes(module, prep, device)
    kind = type(module)
    return LoadedModel(
        module, prep, classes, f"module:{kind.__module__}.{kind.__qualname__}", "module"
    )


def _declared_or_inferred_classes(module: nn.Module, prep: Preprocessing, device) -> list[str]:
    """Class names from the output width; none for a model that declares `num_classes = 0`
    (timm's convention for a model without a head: its output is a representation)."""
    if getattr(module, "num_classes", None) == 0:
        return []
    return _class_names(_infer_num_classes(module, prep, device))


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
    """Import user code and call its factory; whatever goes wrong there is the user's to fix,
    so it becomes one line naming the spec, the exception and its message."""
    spec = f"py:{module_name}:{factory_name}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelSpecError(f"cannot import '{module_name}' for {spec}: {exc}") from exc
    except (Exception, SystemExit) as exc:  # user code fails on import in any way
        raise ModelSpecError(
            f"importing '{module_name}' for {spec} failed: {_one_line(exc)}; fix the module "
            f"(python -c 'import {module_name}' shows the traceback)"
        ) from exc
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ModelSpecError(f"'{module_name}' has no callable '{factory_name}'")
    required = _required_arguments(factory)
    if required:
        raise ModelSpecError(
            f"{spec} needs argument(s) {', '.join(required)}, but jaggy calls it with none; "
            f"point the spec at a function without required arguments that builds the model"
        )
    try:
        model = factory()
    except (Exception, SystemExit) as exc:
        raise ModelSpecError(f"{spec} raised {_one_line(exc)}; fix the factory") from exc
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model, _preprocessing_of(model, spec)


def _required_arguments(factory) -> list[str]:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins and some C types have none
        return []
    return [
        name
        for name, p in signature.parameters.items()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _one_line(exc: BaseException, limit: int = 300, *, with_type: bool = True) -> str:
    """'TypeName: message' on one line (a multi-line message joined), at most `limit` chars."""
    message = ""
    for line in (part.strip() for part in str(exc).splitlines()):
        if line:
            message += ("" if not message else " " if message.endswith(":") else "; ") + line
    if with_type:
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _preprocessing_of(model: nn.Module, spec: str = "the model") -> Preprocessing:
    """A user model's own preprocessing: `jaggy_preprocessing` (dict), timm's `pretrained_cfg`,
    else an explicit, recorded default."""
    own = getattr(model, "jaggy_preprocessing", None)
    if own is not None:
        if not isinstance(own, dict):
            raise ModelSpecError(
                f"{spec}: jaggy_preprocessing is a {type(own).__name__}; make it a dict such as "
                "{'input_size': 224, 'mean': (0.485, 0.456, 0.406), 'std': (0.229, 0.224, 0.225)}"
            )
        try:
            return Preprocessing.from_mapping(own, "model.jaggy_preprocessing")
        except (TypeError, ValueError) as exc:
            raise ModelSpecError(f"{spec}: bad jaggy_preprocessing: {exc}") from exc
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
    try:
        with torch.inference_mode():
            out = module.to(device)(torch.zeros(1, 3, side, side, device=device))
    except Exception as exc:  # user code fails on a plain input in any way
        raise ModelSpecError(
            f"the model fails on a [1, 3, {side}, {side}] input: {_one_line(exc)}; check its "
            "forward and its input_size"
        ) from exc
    if not isinstance(out, torch.Tensor):
        what = f"a {type(out).__name__}" + (
            f" of {len(out)}" if isinstance(out, tuple | list | dict) else ""
        )
        raise ModelSpecError(
            f"the model returns {what}; jaggy needs one tensor of [batch, classes] logits: "
            "return only the logits from forward"
        )
    if out.ndim != 2:
        raise ModelSpecError(
            f"the model returns shape {tuple(out.shape)}; jaggy needs [batch, classes] logits"
        )
    return int(out.shape[1])


SAVE_HINT = "save a plain state dict: torch.save(model.state_dict(), path)"


def _head_size(module: nn.Module) -> int | None:
    try:
        return classifier_layer(module)[2].out_features
    except ModelSpecError:
        return None


def _read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """(state dict, jaggy metadata) of a checkpoint file, loaded with `weights_only=True`.

    A plain state dict has no metadata. `jaggy train` saves {"state_dict": ..., "jaggy":
    {"model", "remedies", "class_names", "preprocessing"}}: the class names size the head
    and name the classes, the preprocessing replaces the model's own (e.g. another input
    size)."""
    path = Path(path)
    if not path.is_file():
        raise ModelSpecError(f"checkpoint '{path}' does not exist")
    if path.stat().st_size == 0:
        raise ModelSpecError(f"checkpoint '{path}' is empty (0 bytes); {SAVE_HINT}")
    with path.open("rb") as handle:
        head = handle.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip, older ones a pickle
        raise ModelSpecError(
            f"checkpoint '{path}' is not a file written by torch.save (neither a zip archive "
            f"nor a pickle); {SAVE_HINT}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelSpecError(
            f"cannot load checkpoint '{path}' with weights_only=True ({_one_line(exc, 200)}); "
            f"{SAVE_HINT}"
        ) from exc
    meta: dict = {}
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        if isinstance(state.get("jaggy"), dict):
            meta = state["jaggy"]
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelSpecError(
            f"checkpoint '{path}' holds a {type(state).__name__}, not a state dict (a mapping "
            f"of parameter names to tensors); {SAVE_HINT}"
        )
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ModelSpecError(
                f"checkpoint '{path}' is not a state dict: entry {name!r} holds a "
                f"{type(value).__name__}, not a tensor; {SAVE_HINT}"
            )
    return state, meta


def _load_state(module: nn.Module, state: dict, path: str | os.PathLike) -> None:
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise ModelSpecError(
            f"checkpoint '{path}' does not fit the model: {_one_line(exc, 400, with_type=False)}"
        ) from exc


def _apply_remedy(loaded: LoadedModel, remedy: str) -> None:
    apply_remedy(loaded, remedy)
