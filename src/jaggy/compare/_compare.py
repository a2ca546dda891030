"""`compare`: audit the base model and each remedied variant on the same images and views.

Each variant is a full audit run in its own folder (`variants/<slug>/`, resumable), so every
number in compare.json can be recomputed from that variant's predictions.parquet. Speed is the
forward time per image (one view at the model's input size), measured in this process with the
variants interleaved, so machine load affects them alike.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..engine import AuditConfig
from ..engine._device import resolve_device
from ..engine._graph import GRAPH_KINDS, check_graph_option
from ..engine._runner import execute
from ..engine._setup import AuditSetup, traced_graph_problem
from ..errors import ArgumentError, RunMismatchError
from ..models import LoadedModel, load_model
from ..remedies._spec import validate_remedies
from ..results._compare import write_compare
from ..results._files import RUN_FILE

BASE = "base"


@dataclass(frozen=True)
class Variant:
    """A named chain of remedies ('base' has none). Its spec joins remedies with '+'."""

    name: str
    remedies: tuple[str, ...]

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.name).strip("-") or "variant"


def parse_variant(spec: str) -> Variant:
    """'blurpool:4' -> one remedy; 'aps+circular' -> a chain applied in order."""
    remedies = tuple(part.strip() for part in spec.split("+") if part.strip())
    if not remedies:
        raise ArgumentError(f"empty --remedy variant '{spec}'")
    validate_remedies(list(remedies))
    return Variant("+".join(remedies), remedies)


@dataclass
class CompareResult:
    """`out` holds compare.json and one audit folder per variant (`variants/<slug>/`); `rows`
    is compare.json's `variants`: per variant its remedies, run folder, params, forward ms per
    image (and its ratio to the base model), every protocol's metrics, the graph its audit ran
    and, when a `--graph` asked for was refused by its check, why (`graph_refused`)."""

    out: Path
    rows: list[dict] = field(default_factory=list)

    @property
    def compare_json(self) -> Path:
        return self.out / "compare.json"

    def run(self, variant: str) -> Path:
        """The audit folder of one variant ('base' for the model without remedies)."""
        for row in self.rows:
            if row["variant"] == variant:
                return self.out / row["run"]
        names = ", ".join(row["variant"] for row in self.rows)
        raise KeyError(f"no variant '{variant}' (variants: {names})")


def time_forward(
    models: dict[str, torch.nn.Module], views: torch.Tensor, repeats: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Median milliseconds per image of each model's forward on `views`, interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for _ in range(warmup):
            for module in models.values():
                module(views)
        for _ in range(repeats):
            for name, module in models.items():
                if views.device.type == "cuda":
                    torch.cuda.synchronize(views.device)
                start = time.perf_counter()
                module(views)
                if views.device.type == "cuda":
                    torch.cuda.synchronize(views.device)
                samples[name].append((time.perf_counter() - start) * 1000.0 / len(views))
    return {name: statistics.median(values) for name, values in samples.items()}


def compare_variants(
    config: AuditConfig,
    variants: list[Variant],
    *,
    resume: bool = False,
    progress: bool = True,
    timing_images: int = 8,
    timing_repeats: int = 5,
    distill_epochs: int = 0,
    temperature: float = 4.0,
    distill_lr: float = 0.001,
) -> CompareResult:
    """Audit the base model and each variant with the same settings; write compare.json.

    `config.out` is the comparison folder; `config.remedies` must be empty (the variants say
    which remedies apply). With `distill_epochs` > 0 every variant is first distilled to the
    base model's soft outputs on the run's own images (unlabelled; `jaggy.train.distill`),
    named '<variant> distilled', and its row records the distillation and its KL.
    """
    if distill_epochs < 0 or not temperature > 0:
        raise ArgumentError("compare: --distill takes epochs >= 0 and --temperature > 0")
    if distill_epochs:
        variants = [Variant(f"{v.name} distilled", v.remedies) for v in variants]
    if config.remedies:
        raise ArgumentError("compare: give remedies as --remedy variants, not in the base spec")
    names = [v.name for v in variants]
    if len(set(names)) != len(names) or BASE in names:
        raise ArgumentError(f"compare: each variant once, and not '{BASE}' (got {names})")
    config.validate()
    out = Path(config.out)
    device = resolve_device(config.device)
    all_variants = [Variant(BASE, ())] + list(variants)
    # Load every variant first: a remedy that cannot apply fails before any audit starts.
    loaded: dict[str, LoadedModel] = {}
    for variant in all_variants:
        loaded[variant.name] = load_model(
            config.model,
            checkpoint=config.checkpoint,
            random_weights=config.random_weights,
            remedies=list(variant.remedies),
            device=device,
        )
    if config.graph in ("frozen", "onnx"):  # refused before any audit, as `jaggy audit` does
        for variant in all_variants:
            problem = traced_graph_problem(config, loaded[variant.name], device)
            check_graph_option(config.graph, problem)
    distilled = _distill_variants(
        config, loaded, all_variants, device, distill_epochs, temperature, distill_lr, progress
    )
    rows = []
    for variant in all_variants:
        run_config = replace(
            config, out=str(out / "variants" / variant.slug), remedies=list(variant.remedies)
        )
        setup = AuditSetup(run_config, loaded[variant.name])
        try:
            result = execute(setup, resume=resume or _has_run(run_config.out), progress=progress)
        except RunMismatchError as exc:
            raise ArgumentError(
                f"'{run_config.out}' holds a run made with other settings; "
                "delete it or choose another --out"
            ) from exc
        rows.append(
            {
                "variant": variant.name,
                "remedies": list(loaded[variant.name].remedies),
                "run": str(Path("variants") / variant.slug),
                "params": sum(p.numel() for p in loaded[variant.name].module.parameters()),
                "protocols": result.summary.to_dict()["protocols"],
                "graph": result.manifest.graph,
                **_graph_refusal(config.graph, result.manifest),
                **({"distill": distilled[variant.name]} if variant.name in distilled else {}),
            }
        )
    views = _timing_views(loaded[BASE], timing_images, device)
    ms = time_forward({name: m.module for name, m in loaded.items()}, views, timing_repeats)
    for row in rows:
        row["ms_per_image"] = ms[row["variant"]]
        row["ms_ratio_to_base"] = ms[row["variant"]] / ms[BASE]
    out.mkdir(parents=True, exist_ok=True)
    write_compare(
        out,
        {
            "model": config.model,
            "protocols": config.protocols,
            "timing": {
                "images_per_batch": len(views),
                "repeats": timing_repeats,
                "device": device.type,
                "what": "median forward ms per image, interleaved",
            },
            "variants": rows,
        },
    )
    return CompareResult(out, rows)


def _distill_variants(
    config, loaded, variants, device, epochs, temperature, lr, progress
) -> dict[str, dict]:
    """Distil every remedied variant in place to the base model (seeded: a resumed
    comparison distils to the same weights, which the engine checks)."""
    if not epochs:
        return {}
    from ..data import discover_images
    from ..train._distill import distill_on_items

    items = discover_images(
        config.data, samples=config.samples, labels=config.labels, limit=config.images
    )
    out = {}
    for variant in variants:
        if variant.name == BASE:
            continue
        out[variant.name] = distill_on_items(
            loaded[variant.name].module,
            loaded[BASE].module,
            items,
            loaded[BASE].preprocessing,
            epochs=epochs,
            temperature=temperature,
            lr=lr,
            seed=config.seed,
            device=device,
            progress=progress,
        )
        loaded[variant.name].module.eval()
    return out


def _graph_refusal(asked: str, manifest) -> dict:
    """{'graph_refused': why} when `--graph frozen/onnx` was asked for but the variant's audit
    ran eagerly (its graph failed the check against eager): its numbers are still right, but
    its speed is eager's, which a reader comparing variants must know."""
    if asked not in GRAPH_KINDS or manifest.graph == asked:
        return {}
    check = manifest.graph_check or {}
    trial = check if "ok" in check else check.get(asked, {})  # fixed batch size, or auto's trials
    return {"graph_refused": trial.get("reason", "its check against eager failed")}


def _has_run(out: str) -> bool:
    return (Path(out) / RUN_FILE).is_file()


def _timing_views(loaded: LoadedModel, n: int, device: torch.device) -> torch.Tensor:
    side = loaded.preprocessing.input_size
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, side, side, generator=generator).to(device)
