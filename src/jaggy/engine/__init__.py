"""The batched, streaming, resumable, shardable audit engine."""

from ._config import DEFAULT_PROTOCOLS, DTYPES, MEMORY_FORMATS, AuditConfig
from ._device import check_device_options, resolve_device
from ._runner import AuditResult, AuditSetup, execute, resolve_settings, run_audit
from ._store import PREDICTION_SCHEMA, RunStore

__all__ = [
    "DEFAULT_PROTOCOLS",
    "DTYPES",
    "MEMORY_FORMATS",
    "PREDICTION_SCHEMA",
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
