"""The one training loop: seeded SGD with momentum and a cosine learning-rate schedule.

Every trainer of `jaggy.train` (the canvas experiment, `jaggy train MODEL DATA`, distillation)
hands it a function that yields the batches of one epoch and a loss; the loop owns the
optimiser, the schedule, the normalisation-layer mode and the per-epoch history.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..errors import JaggyError
from ..results._atomic import atomic_write

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


@dataclass(frozen=True)
class Schedule:
    """Optimiser settings. `lr` is the peak of the cosine schedule over all steps; weight
    decay applies to weights with two or more dimensions only (not to norms and biases)."""

    epochs: int = 1
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    max_grad_norm: float | None = None  # clip the gradient's norm (distillation: frozen norms)

    def to_dict(self) -> dict:
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "optimizer": "SGD with momentum, cosine schedule",
        }


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator for data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def set_train_mode(module: nn.Module, train_norm: bool) -> None:
    """Training mode; normalisation layers stay in eval mode (running statistics kept) unless
    `train_norm` (small fine-tuning sets give poor batch statistics)."""
    module.train()
    if train_norm:
        return
    for layer in module.modules():
        if isinstance(layer, _NORMS):
            layer.eval()


def fit(
    module: nn.Module,
    epoch_batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: Schedule,
    steps_per_epoch: int,
    *,
    device: torch.device,
    train_norm: bool = True,
    progress: bool = False,
    desc: str = "train",
) -> list[dict]:
    """Train `module` in place; returns one history entry per epoch.

    epoch_batches(epoch) yields (inputs, targets) on the CPU; targets are class indices
    (train accuracy is then recorded) or any tensor the loss understands (e.g. soft targets).
    """
    decay, no_decay = [], []
    for parameter in module.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    optimizer = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": schedule.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=schedule.lr,
        momentum=schedule.momentum,
    )
    total = max(1, schedule.epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    )
    history = []
    bar = tqdm(total=total, unit="step", disable=not progress, desc=desc, leave=False)
    module.to(device)
    set_train_mode(module, train_norm)
    for epoch in range(schedule.epochs):
        losses, correct, seen = [], 0, 0
        for inputs, targets in epoch_batches(epoch):
            inputs, targets = inputs.to(device), targets.to(device)
            logits = module(inputs)
            loss = loss_fn(logits, targets)
            if not torch.isfinite(loss):
                raise JaggyError(
                    f"{desc}: the loss became {float(loss)} in epoch {epoch + 1}; lower --lr"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if schedule.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(module.parameters(), schedule.max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            if targets.dtype == torch.int64 and targets.ndim == 1:
                correct += int((logits.argmax(1) == targets).sum())
                seen += len(targets)
            bar.update(1)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)) if losses else None,
                "train_accuracy": correct / seen if seen else None,
                "lr_end": scheduler.get_last_lr()[0],
            }
        )
    bar.close()
    module.eval()
    return history


def save_checkpoint(path, module: nn.Module, metadata: dict) -> None:
    """`{"state_dict": ..., "jaggy": metadata}` through the atomic writer; loads with
    `weights_only=True` in `jaggy.load_model(..., checkpoint=path)`, which reads
    `class_names` and `preprocessing` from the metadata. Tensors are saved from the CPU in
    state-dict order, so the same weights give the same bytes."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    payload = {"state_dict": state, "jaggy": metadata}
    # saved through a buffer: torch.save names the archive after a file path, and the atomic
    # writer's temporary name would make equal weights give different bytes
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    atomic_write(path, write)
