"""The batched, streaming, resumable, shardable audit engine."""

from ._config import AuditConfig
from ._runner import AuditResult, run_audit

__all__ = ["AuditConfig", "AuditResult", "run_audit"]
