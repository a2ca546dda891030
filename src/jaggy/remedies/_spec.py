"""Remedy specs (`blurpool:4:reflect`, `aps`, `circular`): parse, list, apply to a model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import ArgumentError
from ._blur import FILTER_SIZES
from ._padding import PAD_MODES, normalize_pad_mode
from ._surgery import aps, blurpool, circular_padding


@dataclass(frozen=True)
class RemedySpec:
    """A parsed remedy. `str(spec)` is the canonical form, with every option spelled out."""

    name: str
    filt_size: int | None = None
    pad: str | None = None

    def __str__(self) -> str:
        if self.name == "blurpool":
            return f"blurpool:{self.filt_size}:{self.pad}"
        if self.name == "aps" and self.filt_size != 1:
            return f"aps:{self.filt_size}"
        return self.name

    def apply(self, module: nn.Module) -> nn.Module:
        """Convert `module` in place; return the converted root module."""
        return _REMEDIES[self.name].apply(module, self)


@dataclass(frozen=True)
class _Remedy:
    name: str
    syntax: str
    summary: str
    parse: Callable[[list[str]], RemedySpec]
    apply: Callable[[nn.Module, RemedySpec], nn.Module]


def _parse_filter(text: str, spec: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value not in FILTER_SIZES:
        raise ArgumentError(
            f"remedy '{spec}': the filter size must be an integer from 1 to 7, got '{text}'"
        )
    return value


def _parse_blurpool(fields: list[str], spec: str) -> RemedySpec:
    if len(fields) > 2:
        raise ArgumentError(f"remedy '{spec}' has too many fields; use blurpool[:FILT[:PAD]]")
    filt_size = _parse_filter(fields[0], spec) if fields and fields[0] else 4
    pad = "reflect"
    if len(fields) == 2:
        try:
            pad = normalize_pad_mode(fields[1])
        except ArgumentError:
            raise ArgumentError(
                f"remedy '{spec}': unknown padding '{fields[1]}'; "
                f"choose one of: {', '.join(PAD_MODES)}"
            ) from None
    return RemedySpec("blurpool", filt_size, pad)


def _parse_aps(fields: list[str], spec: str) -> RemedySpec:
    if len(fields) > 1:
        raise ArgumentError(f"remedy '{spec}' has too many fields; use aps[:FILT]")
    filt_size = _parse_filter(fields[0], spec) if fields and fields[0] else 1
    return RemedySpec("aps", filt_size)


def _parse_circular(fields: list[str], spec: str) -> RemedySpec:
    if fields:
        raise ArgumentError(f"remedy '{spec}': circular takes no options")
    return RemedySpec("circular")


_REMEDIES: dict[str, _Remedy] = {
    remedy.name: remedy
    for remedy in (
        _Remedy(
            "blurpool",
            "blurpool[:FILT[:PAD]]",
            "anti-aliased subsampling: binomial blur of FILT taps (1-7, default 4) before "
            f"every stride; PAD = {' | '.join(PAD_MODES)} (default reflect) "
            "(Zhang, ICML 2019)",
            _parse_blurpool,
            lambda module, spec: blurpool(module, spec.filt_size, spec.pad),
        ),
        _Remedy(
            "aps",
            "aps[:FILT]",
            "adaptive polyphase sampling: every stride keeps the polyphase component with "
            "the largest norm, optionally after a FILT-tap blur (Chaman & Dokmanic, CVPR 2021)",
            _parse_aps,
            lambda module, spec: aps(module, circular=True, filt_size=spec.filt_size),
        ),
        _Remedy(
            "circular",
            "circular",
            "circular padding in every convolution and pooling layer; with aps the model is "
            "exactly invariant to circular shifts",
            _parse_circular,
            lambda module, spec: circular_padding(module),
        ),
    )
}


def list_remedies() -> list[str]:
    """Remedy names, sorted (`aps`, `blurpool`, `circular`)."""
    return sorted(_REMEDIES)


def remedy_help() -> str:
    """One line per remedy: its syntax and what it does (for CLI help texts)."""
    return "\n".join(f"{r.syntax}: {r.summary}" for r in _REMEDIES.values())


def _valid_specs() -> str:
    return ", ".join(r.syntax for r in _REMEDIES.values())


def parse_remedy(spec: str | RemedySpec) -> RemedySpec:
    """Validate a remedy spec before any work; raise ArgumentError saying what is valid.

    Grammar (case-insensitive): `blurpool[:FILT[:PAD]]`, `aps[:FILT]`, `circular`.
    """
    if isinstance(spec, RemedySpec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ArgumentError(f"empty remedy spec; valid remedies: {_valid_specs()}")
    name, *fields = (part.strip() for part in spec.strip().lower().split(":"))
    if name not in _REMEDIES:
        raise ArgumentError(f"unknown remedy '{spec}'; valid remedies: {_valid_specs()}")
    return _REMEDIES[name].parse(fields, spec)


def validate_remedies(specs: list[str] | tuple[str, ...]) -> None:
    """Parse every spec (raise ArgumentError for the first bad one); nothing is applied."""
    for spec in specs:
        parse_remedy(spec)


def apply_remedy(loaded, spec: str | RemedySpec):
    """Apply one remedy to a LoadedModel (or a bare nn.Module).

    For a `jaggy.models.LoadedModel` the module is converted in place (`loaded.module` is
    replaced if the root itself changes), stays on its device and in its train/eval mode, and
    the canonical spec (e.g. 'blurpool:4:reflect') is appended to `loaded.remedies`, which
    every run records in its manifest. Returns `loaded`. For an nn.Module, returns the
    converted module.

    Raises:
        ArgumentError: an unknown or malformed spec (nothing is changed).
    """
    parsed = parse_remedy(spec)
    if isinstance(loaded, nn.Module):
        return parsed.apply(loaded)
    module = getattr(loaded, "module", None)
    if not isinstance(module, nn.Module):
        raise ArgumentError(
            f"apply_remedy needs a jaggy LoadedModel or a torch.nn.Module, "
            f"got {type(loaded).__name__}"
        )
    loaded.module = parsed.apply(module)
    loaded.remedies.append(str(parsed))
    return loaded
