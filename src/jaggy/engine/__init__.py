"""The batched, streaming, resumable, shardable audit engine."""

from ._config import DEFAULT_PROTOCOLS, DTYPES, AuditConfig
from ._runner import AuditResult, AuditSetup, execute, resolve_device, run_audit
from ._store import PREDICTION_SCHEMA, RunStore

__all__ = [
    "DEFAULT_PROTOCOLS",
    "DTYPES",
    "PREDICTION_SCHEMA",
    "AuditConfig",
    "AuditResult",
    "AuditSetup",
    "RunStore",
    "execute",
    "resolve_device",
    "run_audit",
]
