"""What an audit measures on each view: the logits, a representation (pooled features), or both.

`--measure` takes `logits` (the default), `features` (the penultimate layer's pooled features:
the input of the final linear classifier, as timm's `forward_head(pre_logits=True)` returns
it; for a model without a head, its output), `features:LAYER` (the output of the named
submodule, globally average pooled), or both joined by a comma (`logits,features:blocks.5`).

Pooling convention of `features:LAYER`: a [N, C, H, W] output is averaged over H and W, a
[N, L, C] token sequence over its L tokens, a [N, D] output is taken as it is; a tuple or list
output gives its first tensor. The features are compared in float32 whatever `--dtype` is.

A model is *headless* when it declares no classes: timm's `num_classes=0`, or a user's encoder
with the attribute `num_classes = 0`; its output is then the representation, and measuring its
logits is refused before any work.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ArgumentError, ModelSpecError
from ..models import LoadedModel
from ..models._head import classifier_layer

MEASURES = ("logits", "features")
PENULTIMATE = "penultimate"


@dataclass(frozen=True)
class Measure:
    """What is measured on each view: `logits` (class metrics) and/or `features` (the
    representation: `layer` None for the penultimate layer, else a submodule's name)."""

    logits: bool = True
    features: bool = False
    layer: str | None = None

    @classmethod
    def parse(cls, text: str) -> Measure:
        """`logits`, `features`, `features:LAYER`, or two of them joined by ',' (`both` is
        `logits,features`). ArgumentError names the accepted forms."""
        if not isinstance(text, str) or not text.strip():
            raise ArgumentError(f"--measure: {MEASURE_FORMS} (got {text!r})")
        if text.strip() == "both":
            text = "logits,features"
        logits = features = False
        layer = None
        for part in (p.strip() for p in text.split(",")):
            name, sep, where = part.partition(":")
            if name == "logits" and not sep and not logits:
                logits = True
            elif name == "features" and not features and (not sep or where.strip()):
                features, layer = True, (where.strip() or None)
            else:
                raise ArgumentError(f"--measure: {MEASURE_FORMS} (got {text!r})")
        return cls(logits, features, layer)

    def __str__(self) -> str:
        parts = ["logits"] if self.logits else []
        if self.features:
            parts.append(f"features:{self.layer}" if self.layer else "features")
        return ",".join(parts)

    def describe(self) -> dict:
        """For the manifest and summary: what was measured and where."""
        return {
            "measure": str(self),
            "logits": self.logits,
            "features": self.features,
            "layer": (self.layer or PENULTIMATE) if self.features else None,
        }


MEASURE_FORMS = (
    "use logits, features, features:LAYER (a submodule name, e.g. blocks.5), or both "
    "joined by a comma (logits,features; 'both' for short)"
)


def is_headless(loaded: LoadedModel) -> bool:
    """True for a model that declares no classes (timm's num_classes=0, an encoder's
    `num_classes = 0`): its output is a representation, not logits."""
    return loaded.num_classes == 0


def check_measure(measure: Measure, loaded: LoadedModel) -> None:
    """Refuse, before any work, what this model cannot measure."""
    if measure.logits and is_headless(loaded):
        raise ModelSpecError(
            f"{loaded.spec} has no classifier head (it declares num_classes=0), so it has no "
            "class metrics: audit its representation with --measure features"
        )
    if measure.layer is not None:
        find_layer(loaded.module, measure.layer)


def find_layer(module: nn.Module, name: str) -> nn.Module:
    """The submodule `name` (dotted, as in `named_modules()`); ArgumentError with the closest
    names when there is none."""
    names = [n for n, _ in module.named_modules() if n]
    if name in names:
        return module.get_submodule(name)
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"; similar: {', '.join(close)}" if close else f"; e.g. {', '.join(names[-5:])}"
    raise ArgumentError(f"--measure features:{name}: the model has no layer '{name}'{hint}")


def pool_features(output, where: str) -> torch.Tensor:
    """A layer's output as [N, D] float32 features (see the module's pooling convention)."""
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise ModelSpecError(
            f"{where} returns a {type(output).__name__}, not a tensor; choose another layer"
        )
    if output.ndim == 4:
        return output.float().mean(dim=(2, 3))
    if output.ndim == 3:
        return output.float().mean(dim=1)
    if output.ndim == 2:
        return output.float()
    raise ModelSpecError(
        f"{where} returns shape {tuple(output.shape)}; features need [N, D], [N, L, C] or "
        "[N, C, H, W]: choose another layer"
    )


class _StopForward(Exception):
    """Raised by a layer hook once the features are taken and no logits are needed."""


class FeatureTap:
    """Runs a module and returns what `measure` asks for: (logits or None, features or None).

    The penultimate features are the input of the final linear classifier (a forward
    pre-hook, so one forward pass gives logits and features); a headless model's features
    are its output; a named layer's come from a forward hook on it. When only the features
    of a named layer are needed, the forward pass stops at that layer.
    """

    def __init__(self, module: nn.Module, measure: Measure, *, headless: bool, stop_early=True):
        self.module = module
        self.measure = measure
        self._taken: torch.Tensor | None = None
        self._hook = None
        self._output_is_features = False
        self._stop = stop_early and not measure.logits
        if not measure.features:
            return
        if measure.layer is not None:
            layer = find_layer(module, measure.layer)
            self._where = f"layer '{measure.layer}'"
            self._hook = layer.register_forward_hook(self._take_output)
        elif headless:
            self._output_is_features = True
            self._where = "the model's output"
        else:
            _, name, head = _final_classifier(module)
            self._where = f"the input of the classifier '{name}'"
            self._hook = head.register_forward_pre_hook(self._take_input)

    def _take_output(self, _module, _inputs, output):
        self._taken = pool_features(output, self._where)
        if self._stop:
            raise _StopForward

    def _take_input(self, _module, inputs):
        self._taken = pool_features(inputs[0], self._where)
        if self._stop:
            raise _StopForward

    def __call__(
        self, views: torch.Tensor, graph=None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """`graph`: a frozen graph of the module to run instead (a run without hooks)."""
        self._taken = None
        try:
            output = (self.module if graph is None else graph)(views)
        except _StopForward:
            output = None
        if not self.measure.features:
            return output, None
        if self._output_is_features:
            return None, pool_features(output, self._where)
        features, self._taken = self._taken, None
        if features is None:
            raise ModelSpecError(f"{self._where} was not reached by the model's forward pass")
        return (output if self.measure.logits else None), features

    def close(self) -> None:
        """Remove the hook (the module is left as it was)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


def _final_classifier(module: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    try:
        return classifier_layer(module)
    except ModelSpecError as exc:
        raise ModelSpecError(
            f"{exc}; name the layer whose pooled output to compare with --measure "
            "features:LAYER, or declare num_classes = 0 when the model's output is the "
            "representation"
        ) from exc


def probe_features(loaded: LoadedModel, measure: Measure, device: torch.device) -> int | None:
    """Run one blank input through the tap (before any work), so that an unusable layer
    fails now; returns the feature width D (None when no features are measured)."""
    if not measure.features:
        return None
    side = loaded.preprocessing.input_size
    tap = FeatureTap(loaded.module, measure, headless=is_headless(loaded))
    try:
        with torch.inference_mode():
            _, features = tap(torch.zeros(1, 3, side, side, device=device))
    finally:
        tap.close()
    return int(features.shape[1])
