"""How one source image becomes an ordered batch of views; a registry by name."""

from ._base import Protocol, ProtocolOptions, SourceRequest, ViewParams
from ._paths import PATHS
from ._registry import build_protocols, list_protocols, register_protocol

__all__ = [
    "PATHS",
    "Protocol",
    "ProtocolOptions",
    "SourceRequest",
    "ViewParams",
    "build_protocols",
    "list_protocols",
    "register_protocol",
]
