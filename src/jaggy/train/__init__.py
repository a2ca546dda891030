"""Small training experiments: fine-tuning a (remedied) model so it recovers its accuracy."""

from ._finetune import FinetuneConfig, FinetuneResult, audit_command, finetune

__all__ = ["FinetuneConfig", "FinetuneResult", "audit_command", "finetune"]
