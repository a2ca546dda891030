"""The audit engine: (images x protocols x views) -> prediction rows -> summary.

Streaming and resumable: images are split into fixed chunks (`chunk_images` each, in the order
of the image list). A chunk's rows are written atomically once all its views are done, so an
interrupted run loses at most the chunk in progress. Batches never span two chunks, so a
chunk's numbers do not depend on which process computed it or when: resumed and multi-rank
runs reproduce a single uninterrupted run exactly.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import torch
from tqdm import tqdm

from ..data import DecodedImage, ImageItem, SourceDataset, decoded_images, discover_images
from ..errors import ArgumentError
from ..metrics import summarize_predictions
from ..models import LoadedModel, load_model
from ..protocols import Protocol, ProtocolOptions, build_protocols
from ._atomic import atomic_write_json
from ._config import AuditConfig
from ._distributed import Ranks, chunks_of_rank, init_ranks
from ._forward import Forward, RowColumns, ViewMeta
from ._manifest import command_line, device_description, now_iso, package_versions
from ._store import PREDICTION_SCHEMA, RunStore


@dataclass
class AuditResult:
    out: Path
    summary: dict | None
    manifest: dict | None
    rank: int = 0
    timings: dict = field(default_factory=dict)

    @property
    def predictions(self) -> Path:
        return self.out / "predictions.parquet"


def resolve_device(name: str, ranks: Ranks | None = None) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ArgumentError("--device cuda: no CUDA device is available here; use --device cpu")
        if device.index is None and ranks is not None and ranks.distributed:
            device = torch.device("cuda", ranks.local_rank)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ArgumentError("--device mps: MPS is not available here; use --device cpu")
    return device


def default_workers(device: torch.device) -> int:
    cores = os.cpu_count() or 1
    if device.type == "cpu":
        return 1 if cores <= 4 else min(4, cores // 4)
    return min(8, max(1, cores - 1))


class AuditSetup:
    """Everything resolved before any work: model, protocols, images (validated)."""

    def __init__(self, config: AuditConfig, loaded: LoadedModel | None = None):
        config.validate()
        self.config = config
        self.ranks = init_ranks(config.device.split(":")[0])
        self.device = resolve_device(config.device, self.ranks)
        if config.dtype != "float32" and self.device.type == "cpu" and config.dtype == "float16":
            raise ArgumentError("--dtype float16 needs a GPU; on the CPU use float32 or bfloat16")
        self.loaded = loaded or load_model(
            config.model,
            checkpoint=config.checkpoint,
            random_weights=config.random_weights,
            remedies=config.remedies,
            device=self.device,
        )
        self.loaded.module.to(self.device).eval()
        options = ProtocolOptions(
            path=config.path,
            steps=config.steps,
            sizes=tuple(config.embed_sizes(self.loaded.preprocessing.input_size)),
            extra={"fourier_step": config.fourier_step},
        )
        self.protocols: list[Protocol] = build_protocols(
            config.protocols, self.loaded.preprocessing, options
        )
        self.items: list[ImageItem] = discover_images(
            config.data, samples=config.samples, labels=config.labels, limit=config.images
        )
        self.n_chunks = math.ceil(len(self.items) / config.chunk_images)

    def identity(self) -> dict:
        identity = self.config.identity()
        identity["weights_sha256"] = self.loaded.weights_hash()
        identity["images_digest"] = _images_digest(self.items)
        return identity

    def views_per_image(self) -> int:
        return sum(p.n_views for p in self.protocols)


def _images_digest(items: list[ImageItem]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.image_id}\t{item.label}\n".encode())
    return digest.hexdigest()


def run_audit(
    config: AuditConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    loaded: LoadedModel | None = None,
) -> AuditResult:
    """Run (or resume) an audit; returns the summary and manifest (on rank 0)."""
    setup = AuditSetup(config, loaded)
    return execute(setup, resume=resume, progress=progress)


def execute(setup: AuditSetup, *, resume: bool = False, progress: bool = True) -> AuditResult:
    config, ranks = setup.config, setup.ranks
    store = RunStore(config.out)
    identity = setup.identity()
    record = None
    if ranks.is_main:
        record = store.open(identity, resume)
        if record is None:
            batch_size = resolve_batch_size(setup)
            record = {
                "identity": identity,
                "batch_size": batch_size,
                "sessions": [],
                "n_chunks": setup.n_chunks,
                "chunk_images": config.chunk_images,
            }
            store.create(record)
        store.clean_temporary()
    record = ranks.broadcast_object(record)
    ranks.barrier()
    session = {"started": now_iso(), "rank_world": ranks.world_size, "chunks": 0}
    started = time.perf_counter()
    done = store.completed_chunks()
    mine = [c for c in chunks_of_rank(setup.n_chunks, ranks) if c not in done]
    forward = Forward(setup.loaded.module, setup.device, config.dtype, config.channels_last)
    computed = _compute_chunks(
        setup, store, forward, mine, int(record["batch_size"]), progress and ranks.is_main
    )
    session["chunks"] = computed
    ranks.barrier()
    if not ranks.is_main:
        return AuditResult(store.out, None, None, ranks.rank)
    session["finished"] = now_iso()
    session["seconds"] = round(time.perf_counter() - started, 3)
    record = store.read_run() or record
    record["sessions"].append(session)
    store.write_run(record)
    infos = store.merge(setup.n_chunks)
    summary = {
        "model": setup.loaded.spec,
        "protocols": summarize_predictions(
            store.predictions, seed=config.seed, consistency_k=config.consistency_k
        ),
        "n_images": len(setup.items),
        "n_skipped": sum(len(i.get("skipped", [])) for i in infos),
    }
    atomic_write_json(store.out / "summary.json", summary)
    manifest = build_manifest(setup, record, infos)
    atomic_write_json(store.out / "manifest.json", manifest)
    return AuditResult(store.out, summary, manifest, 0, {"seconds": session["seconds"]})


def resolve_batch_size(setup: AuditSetup) -> int:
    if setup.config.batch_size != "auto":
        return int(setup.config.batch_size)
    from ._autotune import choose_batch_size

    return choose_batch_size(setup)


def build_manifest(setup: AuditSetup, record: dict, infos: list[dict]) -> dict:
    config = setup.config
    skipped = [s for info in infos for s in info.get("skipped", [])]
    converted = [c for info in infos for c in info.get("converted", [])]
    return {
        "jaggy_version": package_versions()["jaggy"],
        "command": command_line(),
        "model": setup.loaded.describe(),
        "protocols": [p.params() for p in setup.protocols],
        "config": config.to_dict(),
        "seed": config.seed,
        "batch_size": record["batch_size"],
        "autotune": record.get("autotune"),
        "dtype": config.dtype,
        "channels_last": config.channels_last,
        "device": device_description(setup.device),
        "world_size": setup.ranks.world_size,
        "versions": package_versions(),
        "images": {
            "total": len(setup.items),
            "used": len(setup.items) - len(skipped),
            "skipped": skipped,
            "converted": converted,
        },
        "chunks": {"count": setup.n_chunks, "images_per_chunk": config.chunk_images},
        "started": record["sessions"][0]["started"] if record["sessions"] else None,
        "finished": now_iso(),
        "sessions": record["sessions"],
    }


class _ChunkRows:
    def __init__(self, chunk: int):
        self.chunk = chunk
        self.rows = RowColumns()
        self.skipped: list[dict] = []
        self.converted: list[dict] = []
        self.images = 0


def _compute_chunks(
    setup: AuditSetup,
    store: RunStore,
    forward: Forward,
    chunks: list[int],
    batch_size: int,
    show_progress: bool,
) -> int:
    """Compute and commit `chunks` (in order). Returns how many were written."""
    if not chunks:
        return 0
    config = setup.config
    size = config.chunk_images
    items = [item for c in chunks for item in setup.items[c * size : (c + 1) * size]]
    prep = setup.loaded.preprocessing
    dataset = SourceDataset(
        items, [p.source() for p in setup.protocols], prep.interpolation, prep.crop_pct
    )
    workers = config.workers if config.workers is not None else default_workers(setup.device)
    bar = tqdm(
        total=len(items) * setup.views_per_image(),
        unit="view",
        disable=not show_progress,
        desc="audit",
        smoothing=0.05,
        dynamic_ncols=True,
    )
    batcher = _Batcher(forward, batch_size, bar)
    current: _ChunkRows | None = None
    written = 0
    pin = setup.device.type == "cuda"
    for decoded in decoded_images(dataset, workers, pin_memory=pin):
        chunk = decoded.item.index // size
        if current is None or chunk != current.chunk:
            if current is not None:
                _commit(store, batcher, current)
                written += 1
            current = _ChunkRows(chunk)
            batcher.rows = current.rows
        current.images += 1
        if decoded.error is not None:
            current.skipped.append(
                {
                    "image_id": decoded.item.image_id,
                    "path": decoded.item.path,
                    "reason": decoded.error,
                }
            )
            bar.update(setup.views_per_image())
            continue
        if decoded.note:
            current.converted.append({"image_id": decoded.item.image_id, "note": decoded.note})
        _enqueue_image(setup, batcher, decoded)
    if current is not None:
        _commit(store, batcher, current)
        written += 1
    bar.close()
    return written


def _enqueue_image(setup: AuditSetup, batcher: _Batcher, decoded: DecodedImage) -> None:
    prep = setup.loaded.preprocessing
    device = setup.device
    item = decoded.item
    normalized: dict[str, torch.Tensor] = {}
    for protocol in setup.protocols:
        key = protocol.source().key
        if key not in normalized:
            normalized[key] = prep.normalize(decoded.sources[key].to(device, non_blocking=True))
        source = normalized[key]
        params = protocol.view_params()
        start = 0
        while start < len(params):
            take = min(batcher.room(), len(params) - start)
            views = protocol.make_views(source, range(start, start + take))
            metas = [
                ViewMeta(
                    item.index,
                    item.image_id,
                    protocol.key,
                    protocol.name,
                    k,
                    float(params[k].dx),
                    float(params[k].dy),
                    int(params[k].size),
                    item.label,
                )
                for k in range(start, start + take)
            ]
            batcher.add(views, metas)
            start += take


def _commit(store: RunStore, batcher: _Batcher, chunk: _ChunkRows) -> None:
    batcher.flush()
    table = pa.table(chunk.rows.columns, schema=PREDICTION_SCHEMA)
    store.write_chunk(
        chunk.chunk,
        table,
        {
            "chunk": chunk.chunk,
            "images": chunk.images,
            "skipped": chunk.skipped,
            "converted": chunk.converted,
        },
    )


class _Batcher:
    """Collects views into batches of exactly `batch_size` (the last of a chunk may be
    smaller) and runs them."""

    def __init__(self, forward: Forward, batch_size: int, bar):
        self.forward = forward
        self.batch_size = batch_size
        self.bar = bar
        self.views: list[torch.Tensor] = []
        self.metas: list[ViewMeta] = []
        self.rows = RowColumns()

    def room(self) -> int:
        return self.batch_size - len(self.metas)

    def add(self, views: torch.Tensor, metas: list[ViewMeta]) -> None:
        self.views.append(views)
        self.metas.extend(metas)
        if len(self.metas) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.metas:
            return
        batch = self.views[0] if len(self.views) == 1 else torch.cat(self.views)
        self.forward.run(batch, self.metas, self.rows)
        self.bar.update(len(self.metas))
        self.views, self.metas = [], []
