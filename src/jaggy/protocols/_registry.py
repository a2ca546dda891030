"""Protocols register themselves by name; the CLI's choices come from here."""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import ArgumentError
from ..models import Preprocessing
from ._base import Protocol, ProtocolOptions

_PROTOCOLS: dict[str, type[Protocol]] = {}
_ALL_IMPORTED = False  # the package's modules are imported once (a rescan per lookup cost ms)


def register_protocol(cls: type[Protocol]) -> type[Protocol]:
    """Class decorator: make a protocol available by its `name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _PROTOCOLS[cls.name] = cls
    return cls


def _import_all() -> None:
    global _ALL_IMPORTED
    if _ALL_IMPORTED:
        return
    for info in pkgutil.iter_modules(_package_path()):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")
    _ALL_IMPORTED = True


def _package_path() -> list[str]:
    import jaggy.protocols as package

    return list(package.__path__)


def list_protocols() -> list[str]:
    _import_all()
    return sorted(_PROTOCOLS)


def protocol_class(name: str) -> type[Protocol]:
    _import_all()
    if name not in _PROTOCOLS:
        raise ArgumentError(
            f"unknown protocol '{name}'; choose from: {', '.join(sorted(_PROTOCOLS))}"
        )
    return _PROTOCOLS[name]


def build_protocols(
    names: list[str], preprocessing: Preprocessing, options: ProtocolOptions
) -> list[Protocol]:
    """Instantiate protocols in the order given; sized ones once per size (`sizes_for`).
    Raises ArgumentError for unknown names and impossible geometry, before any work."""
    protocols: list[Protocol] = []
    for name in names:
        cls = protocol_class(name)
        expand = getattr(cls, "instances", None)
        if expand is not None:  # a protocol made of several instances (e.g. canvas cells)
            protocols.extend(expand(preprocessing, options))
        elif getattr(cls, "sized", False):
            for size in cls.sizes_for(preprocessing, options):
                protocols.append(cls(preprocessing, options, size=size))
        else:
            protocols.append(cls(preprocessing, options))
    keys = [p.key for p in protocols]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise ArgumentError(f"protocol(s) asked for twice: {', '.join(sorted(duplicates))}")
    for protocol in protocols:
        protocol.view_params()  # validates geometry
    return protocols
