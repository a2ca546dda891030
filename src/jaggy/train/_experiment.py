"""`jaggy train --experiment canvas`: the data side of the study, offline in minutes on a CPU.

Digits with a photographer's bias (see `_canvas`) train the same small CNN (`canvasnet`, total
stride 8) in several variants: no augmentation, translation augmentation over the whole
canvas or over its left half only, BlurPool, APS with circular padding, augmentation with
BlurPool, and the unaugmented network remedied after training (BlurPool), as it is and
distilled back to its own soft outputs on unlabelled canvases. Every variant is saved as a
checkpoint and audited by the engine with the `canvas` protocol (held-out digits at every
position of the canvas, at several sizes); its per-image metrics are then grouped by how
typical the position is (density of that variant's own training positions), how typical the
image is (distance to its k nearest training images, in pixels and in the variant's feature
space) and object size.

Outputs in OUT: `train.json`, `data/` (held-out digit files and their list, `boxes.json`:
the training set's boxes as COCO), `variants/<name>/` (checkpoint.pt, boxes.json of the
positions it was trained on in its first epoch, `audit/`: an ordinary audit folder),
`figures/*.png`.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..engine import AuditConfig, run_audit
from ..engine._device import resolve_device
from ..errors import ArgumentError
from ..metrics import list_metrics
from ..models import LoadedModel, Preprocessing, load_model
from ..protocols.canvas import CELL
from ..remedies._spec import validate_remedies
from ..results._atomic import atomic_write_json
from . import _analysis as analysis
from ._canvas import (
    CanvasGeometry,
    SpriteBank,
    augmented_placements,
    batches,
    centred_placements,
    load_digit_split,
    photographer_placements,
    placement_centres,
    steps_per_epoch,
    write_coco_boxes,
    write_digit_files,
)
from ._distill import distill, mean_kl
from ._loop import Schedule, fit, save_checkpoint, seed_everything
from ._typicality import knn_distance, penultimate_features, position_density, position_histogram
from .canvasnet import CANVAS_PREPROCESSING, CANVAS_SPEC

CLASS_NAMES = [str(d) for d in range(10)]
# Small convolutions run 1.4-1.9x faster on the CPU in channels-last layout (measured here).
CHANNELS_LAST = torch.channels_last


@dataclass(frozen=True)
class VariantPlan:
    """How one variant is made.

    start: 'scratch' (trained from a seeded initialisation), 'remedy' (the weights of `base`,
        remedies applied, no training) or 'distill' (as 'remedy', then distilled to `base`'s
        soft outputs on unlabelled canvases).
    augment: the training placements (`_canvas.augmented_placements`).
    """

    name: str
    description: str
    augment: str = "none"
    remedies: tuple[str, ...] = ()
    start: str = "scratch"
    base: str | None = None


VARIANTS: dict[str, VariantPlan] = {
    p.name: p
    for p in (
        VariantPlan("baseline", "no augmentation: the photographer's positions only"),
        VariantPlan("augment", "translation augmentation over the whole canvas", "translate"),
        VariantPlan(
            "augment_left_half", "translation augmentation over the left half only", "left_half"
        ),
        VariantPlan("blurpool", "BlurPool (Zhang 2019), no augmentation", remedies=("blurpool",)),
        VariantPlan(
            "aps_circular",
            "APS + circular padding (Chaman & Dokmanic 2021), no augmentation",
            remedies=("aps", "circular"),
        ),
        VariantPlan(
            "augment_blurpool",
            "translation augmentation over the whole canvas + BlurPool",
            "translate",
            ("blurpool",),
        ),
        VariantPlan(
            "baseline_blurpool",
            "the trained baseline with BlurPool put in afterwards, not retrained",
            remedies=("blurpool",),
            start="remedy",
            base="baseline",
        ),
        VariantPlan(
            "baseline_blurpool_distilled",
            "baseline_blurpool distilled to the baseline's soft outputs on unlabelled canvases",
            remedies=("blurpool",),
            start="distill",
            base="baseline",
        ),
    )
}


@dataclass
class CanvasConfig:
    """Settings of the canvas experiment. Sizes and positions in px.

    eval_sizes: object sizes at which held-out digits visit every canvas position.
    eval_images: held-out digits audited (the first ones of the seeded, class-interleaved
        held-out list); the whole held-out set serves the distillation KL.
    train_digits: use only the first N training digits (tests).
    k: neighbours of the image-typicality distance.
    bin_px: side of the position-density histogram bins (the canvas protocol's cell side).
    """

    out: str = "jaggy-train"
    geometry: CanvasGeometry = field(default_factory=CanvasGeometry)
    eval_sizes: tuple[int, ...] = (10, 14, 18)
    heldout_fraction: float = 0.25
    train_digits: int | None = None
    eval_images: int = 40
    epochs: int = 15
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    distill_epochs: int = 5
    distill_lr: float = 0.001
    temperature: float = 4.0
    k: int = 5
    bin_px: int = CELL
    seed: int = 0
    variants: tuple[str, ...] = tuple(VARIANTS)
    device: str = "cpu"
    threads: int | None = None
    audit_batch_size: int = 256
    figures: bool = True

    def validate(self) -> None:
        canvas = self.geometry.canvas
        lo, hi = self.geometry.size_range
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ArgumentError(
                f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}"
            )
        if not self.variants:
            raise ArgumentError("no --variant given")
        if canvas < 16:
            raise ArgumentError(f"--canvas must be at least 16 px (got {canvas})")
        if not 8 <= lo <= hi <= canvas // 2:
            raise ArgumentError(
                f"training sizes {lo}-{hi} px: need 8 <= min <= max <= canvas / 2 ({canvas // 2})"
            )
        bad = [s for s in self.eval_sizes if not 8 <= s <= canvas]
        if bad or not self.eval_sizes:
            raise ArgumentError(f"--size must be between 8 and the {canvas} px canvas (got {bad})")
        for name, value in (
            ("--epochs", self.epochs),
            ("--batch-size", self.batch_size),
            ("--eval-images", self.eval_images),
            ("--k", self.k),
            ("--distill-epochs", self.distill_epochs),
        ):
            if value < 1:
                raise ArgumentError(f"{name} must be at least 1 (got {value})")
        if not 0.05 <= self.heldout_fraction <= 0.5:
            raise ArgumentError("the held-out fraction must be between 0.05 and 0.5")
        if self.train_digits is not None and self.train_digits < self.k:
            raise ArgumentError(f"--train-digits must be at least k = {self.k}")
        if not self.temperature > 0:
            raise ArgumentError(f"--temperature must be positive (got {self.temperature})")
        for plan in self.plans():
            validate_remedies(list(plan.remedies))

    def plans(self) -> list[VariantPlan]:
        """The variants to make, in registry order, with the bases they need."""
        wanted = set(self.variants)
        wanted |= {VARIANTS[v].base for v in self.variants if VARIANTS[v].base}
        return [plan for name, plan in VARIANTS.items() if name in wanted]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["geometry"] = self.geometry.to_dict()
        return data


@dataclass
class TrainResult:
    """What a training command returns: its folder and the content of train.json."""

    out: Path
    record: dict


class _Clock:
    """Wall and CPU seconds (this process, every thread) since creation."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def read(self) -> dict:
        return {
            "wall": round(time.perf_counter() - self.wall, 3),
            "cpu": round(time.process_time() - self.cpu, 3),
        }


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArgumentError(
            f"'{out}' exists and is not empty; jaggy train writes a new folder (choose another "
            "--out, or delete it if it holds an earlier experiment)"
        )


class _Experiment:
    """The state shared by the variants of one run."""

    def __init__(self, config: CanvasConfig, progress: bool):
        self.config = config
        self.progress = progress
        self.out = Path(config.out)
        self.device = resolve_device(config.device)
        g = config.geometry
        self.canvas = g.canvas
        self.prep = Preprocessing(**{**CANVAS_PREPROCESSING, "input_size": g.canvas})
        self.split = load_digit_split(config.seed, config.heldout_fraction, config.train_digits)
        n_eval = min(config.eval_images, len(self.split.heldout_labels))
        self.eval_digits = self.split.heldout_images[:n_eval]
        self.eval_labels = self.split.heldout_labels[:n_eval]
        self.train = SpriteBank(self.split.train_images, self.prep)
        self.heldout = SpriteBank(self.split.heldout_images, self.prep)
        n_train = len(self.split.train_labels)
        self.base_placements = photographer_placements(
            n_train, g, np.random.default_rng([config.seed, 3])
        )
        heldout_placements = photographer_placements(
            len(self.heldout), g, np.random.default_rng([config.seed, 4])
        )
        self.heldout_canvases = self.heldout.canvases(
            range(len(self.heldout)), heldout_placements, self.canvas
        )
        # typicality references: every digit at the canvas centre at the typical size
        self.reference_size = int(round(g.size_mean))
        self.train_centred = self.train.canvases(
            range(n_train), centred_placements(n_train, self.reference_size, self.canvas), g.canvas
        )
        self.eval_centred = self.heldout.canvases(
            range(n_eval), centred_placements(n_eval, self.reference_size, self.canvas), g.canvas
        )
        self.schedule = Schedule(config.epochs, config.lr, config.momentum, config.weight_decay)
        self.steps = steps_per_epoch(n_train, config.batch_size)
        self.models: dict[str, LoadedModel] = {}
        self.positions: dict[str, np.ndarray] = {}
        self.checkpoints: dict[str, Path] = {}

    def pixels(self, canvases: torch.Tensor) -> np.ndarray:
        """Grey values 0..1 of normalised canvases (channel 0; the digits are grey)."""
        return self.prep.to_pixels(canvases)[:, 0].flatten(1).numpy()

    # -- making a variant ---------------------------------------------------------------

    def fresh_model(self, plan: VariantPlan) -> LoadedModel:
        torch.manual_seed(self.config.seed)  # every scratch variant starts from the same init
        loaded = load_model(
            CANVAS_SPEC, random_weights=True, remedies=list(plan.remedies), device=self.device
        )
        loaded.preprocessing = self.prep
        loaded.module.to(memory_format=CHANNELS_LAST)
        return loaded

    def model_from(self, base: str, remedies: tuple[str, ...]) -> LoadedModel:
        loaded = load_model(
            CANVAS_SPEC,
            checkpoint=self.checkpoints[base],
            remedies=list(remedies),
            device=self.device,
        )
        loaded.module.to(memory_format=CHANNELS_LAST)
        return loaded

    def train_scratch(self, plan: VariantPlan) -> tuple[LoadedModel, list[dict], np.ndarray]:
        loaded = self.fresh_model(plan)
        seen: list[np.ndarray] = []
        labels = torch.as_tensor(self.split.train_labels)

        def epoch_batches(epoch: int):
            rng = np.random.default_rng([self.config.seed, 5, epoch])
            placements = augmented_placements(self.base_placements, plan.augment, self.canvas, rng)
            seen.append(placements)
            for batch in batches(len(placements), self.config.batch_size, rng):
                images = self.train.canvases(batch, placements[batch], self.canvas)
                yield images.contiguous(memory_format=CHANNELS_LAST), labels[batch]

        seed_everything(self.config.seed)
        history = fit(
            loaded.module,
            epoch_batches,
            torch.nn.functional.cross_entropy,
            self.schedule,
            self.steps,
            device=self.device,
            train_norm=True,
            progress=self.progress,
            desc=plan.name,
        )
        return loaded, history, np.stack(seen)

    def distilled(self, plan: VariantPlan) -> tuple[LoadedModel, list[dict], np.ndarray, dict]:
        teacher = self.model_from(plan.base, ())
        student = self.model_from(plan.base, plan.remedies)
        before = mean_kl(teacher.module, student.module, self.heldout_canvases)
        seen: list[np.ndarray] = []
        n = len(self.train)

        def epoch_images(epoch: int):
            # unlabelled canvases: training digits at fresh photographer's placements
            rng = np.random.default_rng([self.config.seed, 6, epoch])
            placements = photographer_placements(n, self.config.geometry, rng)
            seen.append(placements)
            for batch in batches(n, self.config.batch_size, rng):
                images = self.train.canvases(batch, placements[batch], self.canvas)
                yield images.contiguous(memory_format=CHANNELS_LAST)

        seed_everything(self.config.seed)
        schedule = Schedule(
            self.config.distill_epochs, self.config.distill_lr, 0.9, 0.0, max_grad_norm=1.0
        )
        history = distill(
            student.module,
            teacher.module,
            epoch_images,
            schedule,
            self.steps,
            temperature=self.config.temperature,
            device=self.device,
            progress=self.progress,
        )
        after = mean_kl(teacher.module, student.module, self.heldout_canvases)
        info = {
            "teacher": plan.base,
            "temperature": self.config.temperature,
            "epochs": self.config.distill_epochs,
            "lr": self.config.distill_lr,
            "images": "training digits at fresh photographer's placements each epoch, unlabelled",
            "kl_heldout_before": before,
            "kl_heldout_after": after,
            "kl_what": "mean KL(teacher || student) at T = 1 over every held-out digit at a "
            "photographer's placement (nats)",
        }
        positions = np.concatenate([self.positions[plan.base], np.stack(seen)])
        return student, history, positions, info

    def make(self, plan: VariantPlan) -> dict:
        folder = self.out / "variants" / plan.name
        folder.mkdir(parents=True, exist_ok=True)
        clock = _Clock()
        extra: dict = {}
        if plan.start == "scratch":
            loaded, history, positions = self.train_scratch(plan)
        elif plan.start == "remedy":
            loaded, history = self.model_from(plan.base, plan.remedies), []
            positions = self.positions[plan.base]
            teacher = self.model_from(plan.base, ())
            extra["distill"] = {
                "teacher": plan.base,
                "kl_heldout_before": mean_kl(teacher.module, loaded.module, self.heldout_canvases),
            }
        else:
            loaded, history, positions, extra["distill"] = self.distilled(plan)
        train_time = clock.read()
        checkpoint = folder / "checkpoint.pt"
        save_checkpoint(
            checkpoint,
            loaded.module,
            {
                "model": CANVAS_SPEC,
                "remedies": list(loaded.remedies),
                "class_names": CLASS_NAMES,
                "preprocessing": self.prep.to_dict(),
                "variant": plan.name,
            },
        )
        self.models[plan.name] = loaded
        self.positions[plan.name] = positions
        self.checkpoints[plan.name] = checkpoint
        first = positions[0]
        write_coco_boxes(
            folder / "boxes.json",
            first,
            self.split.train_labels,
            self.canvas,
            CLASS_NAMES,
            prefix=f"{plan.name}/epoch1",
            description=f"canvas experiment, variant {plan.name}: training placements, epoch 1",
        )
        audit_clock = _Clock()
        audit = run_audit(self.audit_config(plan, checkpoint, folder), progress=self.progress)
        audit_time = audit_clock.read()
        return {
            "name": plan.name,
            "description": plan.description,
            "augment": plan.augment,
            "remedies": list(loaded.remedies),
            "start": plan.start,
            "base": plan.base,
            "seed": self.config.seed,
            "parameters": sum(p.numel() for p in loaded.module.parameters()),
            "weights_sha256": loaded.weights_hash(),
            "checkpoint": str(checkpoint.relative_to(self.out)),
            "audit": str((folder / "audit").relative_to(self.out)),
            "audit_with": self.audit_command(plan, loaded, checkpoint),
            "boxes": str((folder / "boxes.json").relative_to(self.out)),
            "history": history,
            "seconds": {"train": train_time, "audit": audit_time},
            "summary_protocols": audit.summary.to_dict()["protocols"],
            **extra,
        }

    def audit_config(self, plan: VariantPlan, checkpoint: Path, folder: Path) -> AuditConfig:
        return AuditConfig(
            model=CANVAS_SPEC,
            data=str(self.heldout_list),
            protocols=["canvas"],
            sizes=list(self.config.eval_sizes),
            checkpoint=str(checkpoint),
            remedies=list(plan.remedies),
            batch_size=self.config.audit_batch_size,
            memory_format="channels_last",
            device=self.config.device,
            threads=self.config.threads,
            seed=self.config.seed,
            out=str(folder / "audit"),
        )

    def audit_command(self, plan: VariantPlan, loaded: LoadedModel, checkpoint: Path) -> str:
        parts = ["jaggy", "audit", CANVAS_SPEC, str(self.heldout_list), "--protocol", "canvas"]
        for size in self.config.eval_sizes:
            parts += ["--size", str(size)]
        for remedy in plan.remedies:
            parts += ["--remedy", remedy]
        return " ".join(parts + ["--checkpoint", str(checkpoint)])

    # -- analysis -------------------------------------------------------------------------

    def density(self, name: str) -> np.ndarray:
        centres = placement_centres(self.positions[name].reshape(-1, 3))
        counts = position_histogram(centres, self.canvas, self.config.bin_px)
        return position_density(counts, self.canvas, self.config.bin_px)

    def analyse(self, row: dict, pixel_distance: np.ndarray) -> dict:
        """Add typicality and the grouped metrics to a variant's row (reads its audit's
        per-image table)."""
        config = self.config
        name = row["name"]
        module = self.models[name].module
        features_eval = penultimate_features(module, self.eval_centred)
        features_train = penultimate_features(module, self.train_centred)
        feature_distance = knn_distance(features_eval, features_train, config.k)
        table = analysis.read_per_image(self.out / row["audit"])
        cells = analysis.canvas_cells(table["protocol"].unique(), self.canvas)
        own, base = self.density(name), self.density("baseline")
        annotated = analysis.annotate(
            table,
            cells,
            canvas=self.canvas,
            bin_px=config.bin_px,
            densities={"own": own, "baseline": base},
            distances={"pixels": pixel_distance, "features": feature_distance},
        )
        per_cell_density = {
            n: annotated.groupby("protocol")[f"density_{n}"].first().to_dict()
            for n in ("own", "baseline")
        }
        seed = config.seed
        counts = position_histogram(
            placement_centres(self.positions[name].reshape(-1, 3)), self.canvas, config.bin_px
        )
        row.update(
            {
                "overall": analysis.group_entry(annotated, "overall", seed),
                "by_size": analysis.by_size(annotated, seed),
                "by_position_density": analysis.by_density(annotated, "density_own", seed),
                "by_baseline_position_density": analysis.by_density(
                    annotated, "density_baseline", seed
                ),
                "by_image_distance": {
                    space: analysis.by_image_distance(annotated, space, seed)
                    for space in ("pixels", "features")
                },
                "by_position": analysis.by_position(
                    row.pop("summary_protocols"), cells, per_cell_density
                ),
                "train_positions": {
                    "bin_px": config.bin_px,
                    "counts": counts.tolist(),
                    "n": int(counts.sum()),
                    "what": "centres of every training placement, all epochs "
                    "(for distilled variants: the base's and the distillation's)",
                },
                "image_distance": {
                    "pixels": pixel_distance.tolist(),
                    "features": feature_distance.tolist(),
                },
            }
        )
        row["accuracy"] = row["overall"].get("accuracy")
        return annotated

    def effects(self, tables: dict, metrics: list[str]) -> list[dict]:
        """Each variant minus the baseline, paired per image, by the baseline's position
        density (the photographer's bias) and by image typicality in pixels."""
        if "baseline" not in tables:
            return []
        base = tables["baseline"]
        out = []
        for name, table in tables.items():
            if name == "baseline":
                continue
            entry: dict = {"variant": name, "minus": "baseline", "overall": None}
            entry["overall"] = analysis.paired_difference(
                table, base, f"{name}/overall", self.config.seed, metrics
            )

            density_bins = base["density_baseline"].map(analysis.density_bin)
            entry["by_baseline_position_density"] = _paired_by(
                table,
                base,
                "protocol",
                [
                    (i, label, set(base.loc[density_bins == i, "protocol"]))
                    for i, (label, _, _) in enumerate(analysis.DENSITY_BINS)
                    if (density_bins == i).any()
                ],
                f"{name}/density",
                self.config.seed,
                metrics,
            )
            per_image = base.groupby("image_index")["distance_pixels"].first()
            bins, _ = analysis.tertile_bins(per_image.to_numpy())
            bin_of = dict(zip(per_image.index, bins, strict=True))
            entry["by_image_distance_pixels"] = _paired_by(
                table,
                base,
                "image_index",
                [
                    (i, label, {k for k, b in bin_of.items() if b == i})
                    for i, label in enumerate(analysis.IMAGE_BINS)
                ],
                f"{name}/pixels",
                self.config.seed,
                metrics,
            )
            out.append(entry)
        return out

    # -- the whole run --------------------------------------------------------------------

    def run(self) -> dict:
        clock = _Clock()
        config = self.config
        data = self.out / "data"
        self.heldout_list = write_digit_files(data / "heldout", self.eval_digits, self.eval_labels)
        write_coco_boxes(
            data / "boxes.json",
            self.base_placements,
            self.split.train_labels,
            self.canvas,
            CLASS_NAMES,
            prefix="train",
            description="canvas experiment: the training set's digits with the photographer's "
            "bias (the placements of variants without augmentation)",
        )
        pixel_distance = knn_distance(
            self.pixels(self.eval_centred), self.pixels(self.train_centred), config.k
        )
        rows, tables = [], {}
        for plan in config.plans():
            row = self.make(plan)
            analysis_clock = _Clock()
            tables[plan.name] = self.analyse(row, pixel_distance)
            row["seconds"]["analysis"] = analysis_clock.read()
            rows.append(row)
        metrics = [m for m in list_metrics() if m in next(iter(tables.values())).columns]
        record = {
            "experiment": "canvas",
            "model": CANVAS_SPEC,
            "class_names": CLASS_NAMES,
            "config": config.to_dict(),
            "seeds": {
                "seed": config.seed,
                "what": "one seed drives the split, the placements, every initialisation (the "
                "same for every variant trained from scratch), the batch order and the "
                "bootstrap",
            },
            "dataset": {
                "source": "scikit-learn load_digits (1797 8x8 digits)",
                "n_train": int(len(self.split.train_labels)),
                "n_heldout": int(len(self.split.heldout_labels)),
                "n_eval_images": int(len(self.eval_labels)),
                "eval_sizes": list(config.eval_sizes),
                "boxes": "data/boxes.json",
                "heldout_list": str(self.heldout_list.relative_to(self.out)),
                "preprocessing": self.prep.to_dict(),
            },
            "typicality": {
                "k": config.k,
                "spaces": {
                    "pixels": f"grey values 0..1 of the digit at the canvas centre at "
                    f"{self.reference_size} px, Euclidean",
                    "features": "the input of the variant's classifier (pooled features) "
                    "for the same canvases, Euclidean",
                },
                "references": "every training digit, rendered the same way",
                "image_bins": "tertiles of the evaluation images' distance",
                "position_density": f"histogram of training centres, {config.bin_px} px bins, "
                "per px^2; density_ratio = density x canvas^2 (1 = uniform over the canvas); "
                "a cell's value is the mean over its positions",
                "density_bins": [
                    {"bin": label, "ratio_range": [lo, hi if np.isfinite(hi) else None]}
                    for label, lo, hi in analysis.DENSITY_BINS
                ],
            },
            "metrics": metrics,
            "variants": rows,
            "effects": self.effects(tables, metrics),
        }
        if config.figures:
            from ._figures import write_figures

            record["figures"] = write_figures(record, self.out / "figures")
        timing = clock.read()
        record["seconds"] = timing
        record["machine"] = _machine(self.device)
        return record


def _machine(device: torch.device) -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1_5_15": [round(v, 2) for v in load] if load else None,
        "platform": platform.platform(),
        "torch": torch.__version__,
    }


def run_canvas_experiment(config: CanvasConfig, *, progress: bool = True) -> TrainResult:
    """Run the canvas experiment into `config.out` (a new folder); write train.json."""
    config.validate()
    out = Path(config.out)
    _check_out(out)
    threads_before = torch.get_num_threads()
    try:
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        out.mkdir(parents=True, exist_ok=True)
        record = _Experiment(config, progress).run()
    finally:
        torch.set_num_threads(threads_before)
    atomic_write_json(out / "train.json", record)
    return TrainResult(out, record)


def tiny_config(out: str, **overrides) -> CanvasConfig:
    """A run of seconds (few digits, one epoch, a small canvas): for tests and smoke checks."""
    settings = dict(
        out=out,
        geometry=CanvasGeometry(canvas=24, size_mean=10.0, size_std=1.0, size_range=(8, 12)),
        eval_sizes=(16, 10),
        train_digits=120,
        eval_images=6,
        epochs=1,
        distill_epochs=1,
        batch_size=32,
        k=3,
        figures=True,
    )
    settings.update(overrides)
    return replace(CanvasConfig(), **settings)


def _paired_by(table, base, column: str, groups, tag: str, seed: int, metrics) -> list[dict]:
    """Variant minus baseline over the rows whose `column` is in each group (i, label, keys);
    each group's bootstrap is seeded by `tag`/i."""
    return [
        {
            "bin": label,
            **analysis.paired_difference(
                table[table[column].isin(keys)],
                base[base[column].isin(keys)],
                f"{tag}/{i}",
                seed,
                metrics,
            ),
        }
        for i, label, keys in groups
    ]
