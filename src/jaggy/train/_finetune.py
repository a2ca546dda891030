"""`finetune`: a short, seeded SGD fine-tuning of a model (usually just converted by a remedy).

The model's own preprocessing (input size, mean, std, interpolation) drives the training
transform: a random resized crop (scale 0.35-1) and a horizontal flip, then normalisation.
SGD with momentum and a cosine learning-rate schedule over all steps. The checkpoint is a plain
state dict plus metadata, which `jaggy audit MODEL --remedy ... --checkpoint PATH` loads with
`weights_only=True` (remedies keep the state-dict keys of the base model).
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from tqdm import tqdm

from .._atomic import atomic_write, atomic_write_json
from .._checks import check_finite, check_out, check_seed
from ..data import ImageDecodeError, ImageItem, decode_image, discover_images
from ..engine import resolve_device
from ..errors import ArgumentError, DataError
from ..models import LoadedModel, load_model
from ..remedies import validate_remedies

CHECKPOINT_NAME = "checkpoint.pt"

_INTERPOLATION = {
    "bicubic": transforms.InterpolationMode.BICUBIC,
    "bilinear": transforms.InterpolationMode.BILINEAR,
    "nearest": transforms.InterpolationMode.NEAREST,
}


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

    def validate(self) -> None:
        if self.epochs < 1:
            raise ArgumentError(f"--epochs must be at least 1 (got {self.epochs})")
        if self.batch_size < 1:
            raise ArgumentError(f"--batch-size must be at least 1 (got {self.batch_size})")
        check_finite(self.lr, "--lr", positive=True)
        check_finite(self.momentum, "--momentum", minimum=0)
        check_finite(self.weight_decay, "--weight-decay", minimum=0)
        check_seed(self.seed)
        check_out(self.out, "a folder for the checkpoint (e.g. --out jaggy-finetune)")
        checkpoint = Path(self.out) / CHECKPOINT_NAME
        if not self.overwrite and os.path.lexists(checkpoint):
            raise ArgumentError(
                f"'{checkpoint}' exists already; choose another --out, or pass --overwrite to "
                "replace it"
            )
        validate_remedies(self.remedies)


@dataclass
class FinetuneResult:
    checkpoint: Path
    history: list[dict]
    skipped: list[dict]


class _LabelledImages(Dataset):
    def __init__(self, items: list[ImageItem], transform):
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        item = self.items[i]
        try:
            image, _ = decode_image(item.path)
        except ImageDecodeError:
            return None
        return self.transform(image), item.label


def _collate(batch):
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    images, labels = zip(*batch, strict=True)
    return torch.stack(images), torch.tensor(labels)


def _seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _usable_items(config: FinetuneConfig, num_classes: int) -> tuple[list[ImageItem], list[dict]]:
    items = discover_images(config.data, labels=config.labels, limit=config.images)
    labelled = [i for i in items if 0 <= i.label < num_classes]
    if not labelled:
        raise DataError(
            f"fine-tuning needs labelled images: none of the {len(items)} image(s) in "
            f"'{config.data}' has a label in 0..{num_classes - 1} (use ImageFolder class "
            "folders or --labels FILE)"
        )
    skipped = []
    for item in labelled:
        try:
            decode_image(item.path)
        except ImageDecodeError as exc:
            skipped.append({"image_id": item.image_id, "reason": str(exc)})
    bad = {s["image_id"] for s in skipped}
    usable = [i for i in labelled if i.image_id not in bad]
    if not usable:
        raise DataError("every labelled image was unreadable; see the reasons above")
    return usable, skipped


def finetune(
    config: FinetuneConfig, *, progress: bool = True, loaded: LoadedModel | None = None
) -> FinetuneResult:
    """Fine-tune and save `checkpoint.pt` and `finetune.json` in `config.out`."""
    config.validate()
    device = resolve_device(config.device)
    generator = _seed_everything(config.seed)
    loaded = loaded or load_model(
        config.model,
        checkpoint=config.checkpoint,
        random_weights=config.random_weights,
        remedies=config.remedies,
        device=device,
    )
    prep = loaded.preprocessing
    items, skipped = _usable_items(config, loaded.num_classes)
    transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(
                prep.input_size,
                scale=(0.35, 1.0),
                interpolation=_INTERPOLATION.get(
                    prep.interpolation, transforms.InterpolationMode.BILINEAR
                ),
            ),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(prep.mean, prep.std),
        ]
    )
    loader = DataLoader(
        _LabelledImages(items, transform),
        batch_size=config.batch_size,
        shuffle=True,
        generator=generator,
        num_workers=config.workers,
        collate_fn=_collate,
        drop_last=False,
    )
    module = loaded.module.to(device)
    decay, no_decay = [], []
    for parameter in module.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    optimizer = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        momentum=config.momentum,
    )
    total_steps = config.epochs * math.ceil(len(items) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps)),
    )
    loss_fn = nn.CrossEntropyLoss()
    history = []
    bar = tqdm(total=total_steps, unit="step", disable=not progress, desc="finetune")
    started = time.perf_counter()
    _train_mode(module, config.train_norm)
    for epoch in range(config.epochs):
        losses, correct, seen = [], 0, 0
        for batch in loader:
            if batch is None:
                continue
            images, labels = batch[0].to(device), batch[1].to(device)
            logits = module(images)
            loss = loss_fn(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
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
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / CHECKPOINT_NAME
    if not config.overwrite and os.path.lexists(checkpoint):  # written meanwhile by another run
        raise ArgumentError(
            f"'{checkpoint}' appeared while fine-tuning; the new weights were not saved over it "
            "(rerun with another --out, or --overwrite)"
        )
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    payload = {
        "state_dict": state,
        "jaggy": {"model": config.model, "remedies": list(loaded.remedies)},
    }
    atomic_write(checkpoint, lambda tmp: torch.save(payload, tmp))
    audit_with = audit_command(config.model, config.remedies, checkpoint)
    atomic_write_json(
        out / "finetune.json",
        {
            "config": asdict(config),
            "model": loaded.describe(),
            "images": len(items),
            "skipped": skipped,
            "history": history,
            "seconds": round(time.perf_counter() - started, 3),
            "audit_with": audit_with,
        },
    )
    return FinetuneResult(checkpoint, history, skipped)


def _train_mode(module: nn.Module, train_norm: bool) -> None:
    """Training mode, with normalisation layers frozen (eval mode: running statistics kept)
    unless `train_norm`: small fine-tuning sets give poor batch statistics."""
    module.train()
    if train_norm:
        return
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm | nn.GroupNorm | nn.LayerNorm):
            layer.eval()


def audit_command(model: str, remedies: list[str], checkpoint: Path) -> str:
    """The `jaggy audit` command line that evaluates a fine-tuned checkpoint."""
    parts = ["jaggy", "audit", model]
    for remedy in remedies:
        parts += ["--remedy", remedy]
    return " ".join(parts + ["--checkpoint", str(checkpoint)])
