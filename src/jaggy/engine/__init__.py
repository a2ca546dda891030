"""The batched, streaming, resumable, shardable audit engine."""

from ._config import DEFAULT_PROTOCOLS, DTYPES, MEMORY_FORMATS, AuditConfig
from ._device import check_device_options, resolve_device
from ._runner import AuditResult, execute, resolve_settings, run_audit
from ._setup import AuditSetup
from ._store import RunStore

__all__ = [
    "DEFAULT_PROTOCOLS",
    "DTYPES",
    "MEMORY_FORMATS",
    "AuditConfig",
    "AuditResult",
    "AuditSetup",
    "RunStore",
    "check_device_options",
    "execute",
    "resolve_device",
    "resolve_settings",
    "run_audit",
]
