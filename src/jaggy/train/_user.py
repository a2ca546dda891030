"""`jaggy train MODEL DATA`: train or fine-tune any model spec on a user's images.

- Labelled (default): DATA is an ImageFolder; the model gets a new linear head sized from the
  class folders (their names are kept as the class names), remedies are applied, and SGD
  with a cosine schedule trains it on a seeded split; `keep_head` keeps the model's own
  classes instead (ImageNet synset folders or `labels`), which is what `jaggy finetune` did.
- `distill`: DATA is any images, unlabelled; the remedied model (student) is fitted to the
  original model's (teacher's) soft outputs at a temperature (see `_distill`).

Then the held-out split is audited by the engine (`audit/`, an ordinary audit folder) and
its per-image metrics are grouped by image typicality: the distance to the k nearest training
images in pixels (the standard input at 32 x 32) and in the trained model's feature space.
Outputs: `checkpoint.pt` (loads with `jaggy audit MODEL --remedy ... --checkpoint PATH`; it
carries the class names), `split/train.txt` and `split/heldout.txt`, `audit/`, `train.json`.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .._checks import check_finite, check_out, check_seed
from ..data import ImageItem, discover_images
from ..engine import AuditConfig, run_audit
from ..engine._device import resolve_device
from ..errors import ArgumentError, DataError
from ..models import LoadedModel, load_model
from ..models._head import replace_head
from ..remedies import apply_remedy
from ..remedies._spec import validate_remedies
from ..results._atomic import atomic_write_json, atomic_write_text
from . import _analysis as analysis
from ._data import (
    TrainImages,
    class_folders,
    collate,
    eval_transform,
    load_inputs,
    parse_augment,
    split_heldout,
    train_transform,
    usable_items,
)
from ._distill import distill, mean_kl
from ._loop import Schedule, fit, save_checkpoint, seed_everything
from ._typicality import knn_distance, penultimate_features

PIXEL_SIDE = 32  # px: the pixel-space typicality compares standard inputs at this size


@dataclass
class TrainConfig:
    """Settings of `jaggy train MODEL DATA`. `lr` is the peak of the cosine schedule;
    `holdout` the fraction of each class held out for the audit and the typicality analysis;
    `protocols`, `sizes`, `steps` those of that audit (`audit=False` skips it)."""

    model: str
    data: str
    out: str = "jaggy-train"
    labels: str | None = None
    remedies: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    random_weights: bool = False
    augment: str | None = None
    keep_head: bool = False
    distill: bool = False
    temperature: float = 4.0
    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    holdout: float = 0.2
    images: int | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    train_norm: bool = False
    audit: bool = True
    protocols: list[str] = field(default_factory=lambda: ["crop", "black"])
    sizes: list[int] | None = None
    steps: int = 10
    k: int = 5
    threads: int | None = None
    overwrite: bool = False  # replace this command's own files in an existing `out`

    def validate(self) -> None:
        if self.epochs < 1:
            raise ArgumentError(f"--epochs must be at least 1 (got {self.epochs})")
        if self.batch_size < 1:
            raise ArgumentError(f"--batch-size must be at least 1 (got {self.batch_size})")
        check_finite(self.lr, "--lr", positive=True)
        check_finite(self.momentum, "--momentum", minimum=0)
        check_finite(self.weight_decay, "--weight-decay", minimum=0)
        check_finite(self.temperature, "--temperature", positive=True)
        check_seed(self.seed)
        check_out(self.out, "a folder for the checkpoint (e.g. --out jaggy-train)")
        _check_out(Path(self.out), self.overwrite, self.audit)
        if not 0.0 <= self.holdout <= 0.5:
            raise ArgumentError(f"--holdout must be between 0 and 0.5 (got {self.holdout})")
        if self.k < 1:
            raise ArgumentError(f"--k must be at least 1 (got {self.k})")
        if self.distill and not self.remedies:
            raise ArgumentError(
                "--distill fits a remedied model to the original one: give --remedy"
            )
        if self.distill and self.keep_head:
            raise ArgumentError("--distill keeps the model's outputs; drop --keep-head")
        if self.audit and self.holdout == 0:
            raise ArgumentError("the held-out audit needs --holdout > 0 (or pass --no-audit)")
        parse_augment(self.augment)
        validate_remedies(self.remedies)
        AuditConfig(
            model=self.model,
            data=self.data,
            protocols=self.protocols,
            sizes=self.sizes,
            steps=self.steps,
        ).validate()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DataTrainResult:
    out: Path
    checkpoint: Path
    history: list[dict]
    record: dict


class _Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> dict:
        return {
            "wall": round(time.perf_counter() - self.wall, 3),
            "cpu": round(time.process_time() - self.cpu, 3),
        }


def _items(
    config: TrainConfig, num_classes: int | None
) -> tuple[list[ImageItem], list[str] | None]:
    """The images and, when labelled with the user's own classes, the class names."""
    if config.distill:
        return discover_images(config.data, labels=config.labels, limit=config.images), None
    if config.keep_head:
        items = discover_images(config.data, labels=config.labels, limit=config.images)
        labelled = [i for i in items if 0 <= i.label < (num_classes or 0)]
        if not labelled:
            raise DataError(
                f"training with the model's own head needs labelled images: none of the "
                f"{len(items)} image(s) in '{config.data}' has a label in 0..{num_classes - 1} "
                "(use ImageNet class folders or --labels FILE, or drop --keep-head)"
            )
        return labelled, None
    items, classes = class_folders(config.data, config.images)
    if len(classes) < 2:
        raise DataError(f"'{config.data}' has {len(classes)} class folder; training needs two")
    return items, classes


def _write_split(path: Path, items: list[ImageItem], labelled: bool) -> None:
    lines = [
        f"{Path(i.path).resolve()}\t{i.label}" if labelled else str(Path(i.path).resolve())
        for i in items
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")


OWN_FILES = ("checkpoint.pt", "train.json", "split")


def _check_out(out: Path, overwrite: bool, audit: bool) -> None:
    """Never replace what is in `out` unless it is this command's own output and
    `overwrite` is given; an earlier held-out audit is never replaced."""
    for name in OWN_FILES:
        path = out / name
        if os.path.lexists(path) and not overwrite:
            raise ArgumentError(
                f"'{path}' exists already; choose another --out, or pass --overwrite to replace it"
            )
    if audit and os.path.lexists(out / "audit"):
        raise ArgumentError(
            f"'{out / 'audit'}' holds an earlier audit; choose another --out (or --no-audit)"
        )


def train_on_data(config: TrainConfig, *, progress: bool = True) -> DataTrainResult:
    """Train (or distil) and audit the held-out split; write everything into `config.out`."""
    config.validate()
    out = Path(config.out)
    clock = _Clock()
    device = resolve_device(config.device)
    augment = parse_augment(config.augment)
    threads_before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        generator = seed_everything(config.seed)
        base = load_model(
            config.model,
            checkpoint=config.checkpoint,
            random_weights=config.random_weights,
            device=device,
        )
        items, classes = _items(config, base.num_classes)
        n_classes = len(classes) if classes is not None else base.num_classes
        if config.audit and n_classes < 5:
            raise ArgumentError(
                f"the held-out audit needs at least 5 classes (the top-5 metrics); this data "
                f"has {n_classes}: pass --no-audit"
            )
        items, skipped = usable_items(items)
        train, heldout = split_heldout(items, config.holdout, config.seed)
        if not train:
            raise DataError("no image is left for training after the held-out split")
        out.mkdir(parents=True, exist_ok=True)
        labelled = not config.distill
        (out / "split").mkdir(exist_ok=True)
        _write_split(out / "split" / "train.txt", train, labelled)
        if heldout:
            _write_split(out / "split" / "heldout.txt", heldout, labelled)
        prep = base.preprocessing
        student, teacher = _models(config, base, classes, device)
        schedule = Schedule(
            config.epochs,
            config.lr,
            config.momentum,
            config.weight_decay,
            max_grad_norm=1.0 if config.distill else None,
        )
        loader = DataLoader(
            TrainImages(train, train_transform(prep, augment)),
            batch_size=config.batch_size,
            shuffle=True,
            generator=generator,
            num_workers=config.workers,
            collate_fn=collate,
        )
        steps = len(loader)
        heldout_inputs = load_inputs(heldout, eval_transform(prep)) if heldout else None
        extra: dict = {}
        train_clock = _Clock()
        if config.distill:
            kl_before = mean_kl(teacher.module, student.module, heldout_inputs) if heldout else None
            history = distill(
                student.module,
                teacher.module,
                lambda epoch: (b[0] for b in loader if b is not None),
                schedule,
                steps,
                temperature=config.temperature,
                device=device,
                progress=progress,
            )
            extra["distill"] = {
                "temperature": config.temperature,
                "kl_heldout_before": kl_before,
                "kl_heldout_after": (
                    mean_kl(teacher.module, student.module, heldout_inputs) if heldout else None
                ),
                "kl_what": "mean KL(teacher || student) at T = 1 over the held-out images' "
                "standard inputs (nats)",
            }
        else:
            history = fit(
                student.module,
                lambda epoch: (b for b in loader if b is not None),
                F.cross_entropy,
                schedule,
                steps,
                device=device,
                train_norm=config.train_norm,
                progress=progress,
            )
        train_time = train_clock.read()
        checkpoint = out / "checkpoint.pt"
        save_checkpoint(
            checkpoint,
            student.module,
            {
                "model": config.model,
                "remedies": list(student.remedies),
                "class_names": list(student.class_names),
                "preprocessing": prep.to_dict(),
            },
        )
        record = {
            "experiment": "distill" if config.distill else "data",
            "model": config.model,
            "class_names": list(student.class_names),
            "config": config.to_dict(),
            "augment": str(augment),
            "seeds": {"seed": config.seed, "what": "split, initialisation of the head, order"},
            "dataset": {
                "data": str(Path(config.data).resolve()),
                "n_train": len(train),
                "n_heldout": len(heldout),
                "classes": classes,
                "skipped": skipped,
                "split": {"train": "split/train.txt", "heldout": "split/heldout.txt"},
            },
            "checkpoint": "checkpoint.pt",
            "audit_with": audit_command(config.model, list(config.remedies), checkpoint),
            "variants": [],
        }
        row = {
            "name": "distilled" if config.distill else "trained",
            "description": f"{config.model} trained on {config.data}",
            "augment": str(augment),
            "remedies": list(student.remedies),
            "start": "distill"
            if config.distill
            else "scratch"
            if config.random_weights
            else "pretrained",
            "seed": config.seed,
            "parameters": sum(p.numel() for p in student.module.parameters()),
            "weights_sha256": student.weights_hash(),
            "checkpoint": "checkpoint.pt",
            "history": history,
            "seconds": {"train": train_time},
            **extra,
        }
        if config.audit and heldout:
            _audit_heldout(config, out, checkpoint, student, train, heldout, row, progress)
        record["variants"].append(row)
        record["typicality"] = {
            "k": config.k,
            "spaces": {
                "pixels": f"the standard input at {PIXEL_SIDE} x {PIXEL_SIDE} px, normalised, "
                "Euclidean",
                "features": "the input of the trained model's classifier, Euclidean",
            },
            "references": "every training image",
            "image_bins": "tertiles of the held-out images' distance",
        }
        record["seconds"] = clock.read()
        atomic_write_json(out / "train.json", record)
        return DataTrainResult(out, checkpoint, history, record)
    finally:
        torch.set_num_threads(threads_before)


def _models(
    config: TrainConfig, base: LoadedModel, classes: list[str] | None, device
) -> tuple[LoadedModel, LoadedModel | None]:
    """(student, teacher): the model to train, and for distillation the unchanged original."""
    if config.distill:
        student = load_model(
            config.model,
            checkpoint=config.checkpoint,
            random_weights=config.random_weights,
            remedies=list(config.remedies),
            device=device,
        )
        return student, base
    if classes is not None:
        replace_head(base.module, len(classes))
        base.class_names = list(classes)
    for remedy in config.remedies:
        apply_remedy(base, remedy)
    base.module.to(device)
    return base, None


def _audit_heldout(config, out, checkpoint, student, train, heldout, row, progress) -> None:
    audit_clock = _Clock()
    audit = run_audit(
        AuditConfig(
            model=config.model,
            data=str(out / "split" / "heldout.txt"),
            protocols=list(config.protocols),
            sizes=config.sizes,
            steps=config.steps,
            checkpoint=str(checkpoint),
            remedies=list(config.remedies),
            device=config.device,
            threads=config.threads,
            seed=config.seed,
            out=str(out / "audit"),
        ),
        progress=progress,
    )
    row["seconds"]["audit"] = audit_clock.read()
    analysis_clock = _Clock()
    prep = student.preprocessing
    transform = eval_transform(prep)
    train_inputs = load_inputs(train, transform)
    heldout_inputs = load_inputs(heldout, transform)
    small = lambda x: F.interpolate(x, size=(PIXEL_SIDE, PIXEL_SIDE), mode="area")  # noqa: E731
    distances = {
        "pixels": knn_distance(
            small(heldout_inputs), small(train_inputs), min(config.k, len(train))
        ),
        "features": knn_distance(
            penultimate_features(student.module, heldout_inputs),
            penultimate_features(student.module, train_inputs),
            min(config.k, len(train)),
        ),
    }
    table = analysis.read_per_image(out / "audit")
    # audit image i is held-out image i (the split file's order)
    for space, values in distances.items():
        table[f"distance_{space}"] = values[table["image_index"].to_numpy()]
    row.update(
        {
            "audit": "audit",
            "overall": analysis.group_entry(table, "overall", config.seed),
            "by_protocol": audit.summary.to_dict()["protocols"],
            "by_image_distance": {
                space: analysis.by_image_distance(table, space, config.seed) for space in distances
            },
            "image_distance": {s: v.tolist() for s, v in distances.items()},
        }
    )
    row["accuracy"] = row["overall"].get("accuracy")
    row["seconds"]["analysis"] = analysis_clock.read()


def audit_command(model: str, remedies: list[str], checkpoint: Path) -> str:
    """The `jaggy audit` command line that evaluates a trained checkpoint."""
    parts = ["jaggy", "audit", model]
    for remedy in remedies:
        parts += ["--remedy", remedy]
    return " ".join(parts + ["--checkpoint", str(checkpoint)])
