"""`finetune`: the short fine-tuning that `jaggy train MODEL DATA --keep-head` now does.

Kept for existing callers: a FinetuneConfig becomes a TrainConfig with the model's own head,
the augmentation finetune always used (a random resized crop keeping 35-100% of the area and a
horizontal flip), no held-out split and no audit. The checkpoint and train.json are those of
`jaggy train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ._user import TrainConfig, audit_command, train_on_data

FINETUNE_AUGMENT = "crop:0.35,flip"

__all__ = ["FINETUNE_AUGMENT", "FinetuneConfig", "FinetuneResult", "audit_command", "finetune"]


@dataclass
class FinetuneConfig:
    """Settings of a fine-tuning run. `lr` is the peak learning rate of the cosine schedule."""

    model: str
    data: str
    labels: str | None = None
    remedies: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    random_weights: bool = False
    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    images: int | None = None
    seed: int = 0
    device: str = "cpu"
    workers: int = 0
    train_norm: bool = False
    out: str = "jaggy-finetune"
    overwrite: bool = False  # replace an existing checkpoint.pt in `out`

    def as_train_config(self) -> TrainConfig:
        return TrainConfig(
            **{k: getattr(self, k) for k in self.__dataclass_fields__},
            keep_head=True,
            augment=FINETUNE_AUGMENT,
            holdout=0.0,
            audit=False,
        )


@dataclass
class FinetuneResult:
    checkpoint: Path
    history: list[dict]
    skipped: list[dict]


def finetune(config: FinetuneConfig, *, progress: bool = True) -> FinetuneResult:
    """Fine-tune and save `checkpoint.pt` and `train.json` in `config.out`."""
    result = train_on_data(config.as_train_config(), progress=progress)
    return FinetuneResult(result.checkpoint, result.history, result.record["dataset"]["skipped"])
