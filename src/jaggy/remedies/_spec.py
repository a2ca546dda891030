"""Remedy specs (`blurpool:4:reflect`, `aps`, `circular`): a registry filled by
`@register_remedy` next to each remedy's surgery; parse, list, apply to a model.

Adding a remedy is one decorated function: `@register_remedy("name", syntax=..., summary=...,
parse=...)` over `apply(module, spec) -> module`; `--remedy`, `jaggy compare` variants and
`load_model(..., remedies=[...])` accept it at once.
"""

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
    """A parsed remedy. `str(spec)` is the canonical form, with every option spelled out (the
    form recorded in manifests). `filt_size` and `pad` are the options of the built-in
    remedies; a remedy without options leaves them None."""

    name: str
    filt_size: int | None = None
    pad: str | None = None

    def __str__(self) -> str:
        return _REMEDIES[self.name].canonical(self)

    def apply(self, module: nn.Module) -> nn.Module:
        """Convert `module` in place; return the converted root module."""
        return _REMEDIES[self.name].apply(module, self)


@dataclass(frozen=True)
class RemedyInfo:
    """A registered remedy: its spec syntax and one-line summary (help texts), how its options
    are parsed (`parse(fields, spec) -> RemedySpec`, fields being the text after the name split
    at ':'), how a spec is written back (`canonical`), and the surgery (`apply`)."""

    name: str
    syntax: str
    summary: str
    parse: Callable[[list[str], str], RemedySpec]
    canonical: Callable[[RemedySpec], str]
    apply: Callable[[nn.Module, RemedySpec], nn.Module]


_REMEDIES: dict[str, RemedyInfo] = {}


def _no_options(name: str) -> Callable[[list[str], str], RemedySpec]:
    def parse(fields: list[str], spec: str) -> RemedySpec:
        if fields:
            raise ArgumentError(f"remedy '{spec}': {name} takes no options")
        return RemedySpec(name)

    return parse


def register_remedy(
    name: str,
    *,
    syntax: str | None = None,
    summary: str = "",
    parse: Callable[[list[str], str], RemedySpec] | None = None,
    canonical: Callable[[RemedySpec], str] | None = None,
):
    """Decorator: register `apply(module, spec) -> module` (in-place surgery returning the
    converted root) as remedy `name`, so `--remedy NAME`, `load_model(..., remedies=[...])`
    and `apply_remedy` accept it.

    Args:
        name: lower-case spec name.
        syntax: how the spec is written, for help texts (default: the name).
        summary: what it does, with its citation.
        parse: `parse(fields, spec) -> RemedySpec` for a remedy with options (default: it takes
            none). Raise ArgumentError saying what is valid.
        canonical: the canonical text of a parsed spec (default: the name).
    """
    if name != name.lower() or not name or ":" in name or "+" in name:
        raise ValueError(f"remedy names are lower case, without ':' or '+' (got {name!r})")

    def wrap(apply: Callable[[nn.Module, RemedySpec], nn.Module]):
        _REMEDIES[name] = RemedyInfo(
            name,
            syntax or name,
            summary,
            parse or _no_options(name),
            canonical or (lambda spec: spec.name),
            apply,
        )
        return apply

    return wrap


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


@register_remedy(
    "blurpool",
    syntax="blurpool[:FILT[:PAD]]",
    summary="anti-aliased subsampling: binomial blur of FILT taps (1-7, default 4) before "
    f"every stride; PAD = {' | '.join(PAD_MODES)} (default reflect) (Zhang, ICML 2019)",
    parse=_parse_blurpool,
    canonical=lambda spec: f"blurpool:{spec.filt_size}:{spec.pad}",
)
def _blurpool(module: nn.Module, spec: RemedySpec) -> nn.Module:
    return blurpool(module, spec.filt_size, spec.pad)


@register_remedy(
    "aps",
    syntax="aps[:FILT]",
    summary="adaptive polyphase sampling: every stride keeps the polyphase component with the "
    "largest norm, optionally after a FILT-tap blur (Chaman & Dokmanic, CVPR 2021)",
    parse=_parse_aps,
    canonical=lambda spec: "aps" if spec.filt_size in (None, 1) else f"aps:{spec.filt_size}",
)
def _aps(module: nn.Module, spec: RemedySpec) -> nn.Module:
    return aps(module, circular=True, filt_size=spec.filt_size or 1)


@register_remedy(
    "circular",
    summary="circular padding in every convolution and pooling layer; with aps the model is "
    "exactly invariant to circular shifts",
)
def _circular(module: nn.Module, spec: RemedySpec) -> nn.Module:
    return circular_padding(module)


def list_remedies() -> list[str]:
    """Remedy names, sorted (`aps`, `blurpool`, `circular`)."""
    return sorted(_REMEDIES)


def remedy_info(name: str) -> RemedyInfo:
    """The RemedyInfo of a registered remedy (ArgumentError listing the valid ones if unknown)."""
    if name not in _REMEDIES:
        raise ArgumentError(f"unknown remedy '{name}'; valid remedies: {_valid_specs()}")
    return _REMEDIES[name]


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
