"""How one source image becomes an ordered batch of views; a registry by name."""

from ._base import Protocol, ProtocolOptions, SourceRequest, ViewParams, options_from_config
from ._paths import MAX_VIEWS, PATHS, path_length, path_offsets, path_span
from ._registry import build_protocols, list_protocols, protocol_class, register_protocol

__all__ = [
    "MAX_VIEWS",
    "PATHS",
    "Protocol",
    "ProtocolOptions",
    "SourceRequest",
    "ViewParams",
    "build_protocols",
    "list_protocols",
    "path_length",
    "options_from_config",
    "path_offsets",
    "path_span",
    "protocol_class",
    "register_protocol",
]
