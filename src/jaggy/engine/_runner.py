"""The audit engine: (images x protocols x views) -> prediction rows -> summary.

Streaming and resumable: images are split into fixed chunks (`chunk_images` each, in the order
of the image list). A chunk's rows are written atomically once all its views are done, so an
interrupted run (even by SIGKILL) loses at most the chunk in progress on each rank. Batches
never span two chunks, and everything that can change a number (batch size, memory format,
CPU threads) is decided once, recorded in run.json and reused by every rank and every resumed
session: resumed and multi-rank runs reproduce a single uninterrupted run exactly.

`--batch-size auto` decides on rank 0's first batches (`_autotune.LiveProbe`): their rows are
kept, the other ranks wait for the choice, and no chunk the probe touched is committed before
run.json records the choice and those chunks' batches (`schedule`, replayed when such a chunk
is computed again). A run killed before the choice has committed nothing and probes again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data._dataset import DecodedImage
from ..errors import JaggyError
from ..metrics import list_metrics, summarize_metrics
from ..metrics._summary import metrics_blocks
from ..metrics._worst_case import view_holds
from ..models import LoadedModel
from ..protocols import Protocol
from ..results import Manifest, RunRecord, Summary, read_metrics
from ..results._features import FEATURES_COLUMN, features_column
from ..results._files import MANIFEST_FILE, SUMMARY_FILE
from ..results._metrics_table import write_metrics
from ..results._predictions import PREDICTION_SCHEMA
from ..results._records import Session, write_record
from ..results._thumbnails import ThumbnailWriter
from ._autotune import (
    LiveProbe,
    choose_configuration,
    earlier_choice,
    free_cached_memory,
    is_pending,
    pending_record,
    probe_views,
    recorded_schedule,
)
from ._config import AuditConfig
from ._device import resolve_device
from ._distributed import split_chunks
from ._forward import Forward, RowColumns, Segment, ViewPlan, is_out_of_memory, take_segments
from ._loading import DECODE_AHEAD, default_workers, iterate_decoded, lower_thread_priority
from ._manifest import command_line, device_description, now_iso, package_versions
from ._sequences import sequence_manifest, write_imagenet_p
from ._setup import AuditSetup
from ._store import RunStore
from ._threads import engine_threads

__all__ = [
    "AuditResult",
    "AuditSetup",
    "default_workers",
    "execute",
    "resolve_device",
    "resolve_settings",
    "run_audit",
]


@dataclass
class AuditResult:
    """What a run returns. `summary` and `manifest` are None on ranks other than 0.
    `timings` (seconds): autotune (what the probe cost beyond the chosen configuration),
    compute (the probe's batches included), merge, metrics, summary, total."""

    out: Path
    summary: Summary | None
    manifest: Manifest | None
    rank: int = 0
    timings: dict = field(default_factory=dict)

    @property
    def predictions(self) -> Path:
        return RunStore(self.out).predictions

    @property
    def metrics_path(self) -> Path:
        return RunStore(self.out).metrics

    @property
    def summary_path(self) -> Path:
        return self.out / SUMMARY_FILE

    @property
    def manifest_path(self) -> Path:
        return self.out / MANIFEST_FILE


def run_audit(
    config: AuditConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    loaded: LoadedModel | None = None,
    on_merged: Callable[[Path], object] | None = None,
) -> AuditResult:
    """Run (or resume) an audit; returns the summary and manifest (on rank 0).

    Under torchrun every rank calls this with the same config: each computes its share of the
    chunks, rank 0 merges them and writes summary.json and manifest.json. `on_merged(out)` is
    called on rank 0 once predictions.parquet is whole, before the metrics are computed (the
    demo starts drawing its figures from it there).
    """
    setup = AuditSetup(config, loaded)
    return execute(setup, resume=resume, progress=progress, on_merged=on_merged)


def execute(
    setup: AuditSetup,
    *,
    resume: bool = False,
    progress: bool = True,
    on_merged: Callable[[Path], object] | None = None,
) -> AuditResult:
    """Compute the chunks of `setup` that are not done yet, then merge and summarise."""
    config, ranks = setup.config, setup.ranks
    started = time.perf_counter()
    threads_before = torch.get_num_threads()
    store = RunStore(config.out)
    try:
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        identity = setup.identity()
        record, done = ranks.on_main(lambda: _open_run(setup, store, identity, resume))
        _apply_recorded_threads(setup, record)
        done_chunks = set(done)
        remaining = [c for c in range(setup.n_chunks) if c not in done_chunks]
        mine = split_chunks(remaining, ranks)
        choice = _PendingChoice(setup, store, record)
        report = {
            "rank": ranks.rank,
            "chunks": 0,
            "backoff": [],
            "error": None,
            "views": 0,
            "nonfinite": 0,
        }
        compute_started = time.perf_counter()
        try:
            if not store.run_file.is_file():
                raise JaggyError(
                    f"rank {ranks.rank} cannot see {store.run_file}, which rank 0 wrote: "
                    "--out must be a folder that every node shares"
                )
            for key, what in (("images_digest", "images"), ("weights_sha256", "weights")):
                if identity[key] != record.identity[key]:
                    raise JaggyError(
                        f"rank {ranks.rank} sees other {what} than rank 0: every node needs "
                        "the same DATA, labels and model"
                    )
            probe = choice.start() if ranks.is_main else choice.wait()
            forward = _make_forward(setup, record.memory_format, record.graph)
            try:
                with engine_threads(setup.device):  # the forward runs on the run's threads
                    _compute_chunks(
                        setup,
                        store,
                        forward,
                        mine,
                        record,
                        report,
                        progress and ranks.is_main,
                        probe=probe,
                        on_chosen=choice.decide,
                    )
            finally:
                forward.close()
            if probe is not None and not probe.done:  # rank 0 had no views to probe on
                choice.decide(probe.finish())
        except JaggyError as exc:
            report["error"] = str(exc)
            if ranks.is_main:
                choice.fail()  # no rank waits for a choice that never comes
            if not ranks.distributed:
                raise
        reports = ranks.all_gather_object(report)
        failed = [r for r in reports if r["error"]]
        if failed:
            if report["error"]:
                raise JaggyError(report["error"])
            raise JaggyError(f"rank {failed[0]['rank']} failed: {failed[0]['error']}")
        compute_seconds = time.perf_counter() - compute_started
        if not ranks.is_main:
            return AuditResult(store.out, None, None, ranks.rank)
        return _finish(setup, store, record, reports, started, compute_seconds, on_merged)
    finally:
        store.unlock()
        torch.set_num_threads(threads_before)
        ranks.shutdown()


def _make_forward(setup: AuditSetup, memory_format: str, graph: str = "eager") -> Forward:
    """The forward step of a run: its model, dtype, memory format and graph, and what it
    measures."""
    config = setup.config
    if graph != "eager" and setup.graphs is None:
        raise JaggyError(
            f"this run ran its model as a {graph} graph, which cannot apply now: "
            f"{setup.graph_problem or 'see --graph'}; rerun into a new --out"
        )
    return Forward(
        setup.loaded.module,
        setup.device,
        config.dtype,
        memory_format,
        compile=config.compile,
        measure=setup.measure,
        headless=setup.headless,
        save_features=config.save_features,
        feature_dim=setup.feature_dim,
        graph=graph,
        graphs=setup.graphs,
    )


def _open_run(
    setup: AuditSetup, store: RunStore, identity: dict, resume: bool
) -> tuple[RunRecord, list[int]]:
    """Rank 0: lock the run folder, create or reopen it, start a session, and list the chunks
    that are done. Returns the run record and the done chunks."""
    store.lock()
    record = store.open(
        identity, resume, overwrite=setup.config.overwrite, fingerprints=setup.fingerprints
    )
    if record is None:
        store.prepare()  # an unwritable --out fails now, not after the probe
        record = RunRecord(
            identity=identity,
            **resolve_settings(setup),
            n_chunks=setup.n_chunks,
            chunk_images=setup.config.chunk_images,
            run_id=uuid.uuid4().hex,
        )
    record.sessions.append(
        Session(
            len(record.sessions),
            started=now_iso(),
            world_size=setup.ranks.world_size,
            command=command_line(),
        )
    )
    store.write_run(record)  # a run.json always names the session that wrote it
    if len(record.sessions) == 1:
        store.write_fingerprints(setup.fingerprints)  # after run.json: the folder is ours
    return record, sorted(store.completed_chunks())


def resolve_settings(setup: AuditSetup) -> dict:
    """The settings that change numbers but are not arguments: the batch size, memory format
    and graph (probed for --batch-size auto) and the CPU thread count. Decided once per run."""
    config = setup.config
    requested = config.requested_memory_format
    autotune = graph_check = None
    if config.batch_size == "auto":
        formats, graphs = probe_formats(config), probe_graphs(setup)
        autotune = earlier_choice(setup, formats, graphs)
        if autotune is None and config.compile:
            autotune = choose_configuration(setup, formats)
        if autotune is None:  # probed on the run's own first batches (_PendingChoice)
            autotune = pending_record(setup, formats, graphs)
        batch_size, memory_format = autotune["batch_size"], autotune["memory_format"]
        graph = autotune.get("graph", "eager")
        graph_check = autotune.get("graph_check")
    else:
        batch_size = int(config.batch_size)
        memory_format = "contiguous" if requested == "auto" else requested
        graph = "eager"  # a fixed batch size runs eagerly unless --graph frozen/onnx asks
        if config.graph in ("frozen", "onnx"):
            graph, graph_check = check_fixed_graph(setup, batch_size, memory_format, config.graph)
            if graph == "onnx":  # ONNX Runtime takes contiguous arrays
                memory_format = "contiguous"
    return {
        "batch_size": batch_size,
        "memory_format": memory_format,
        "graph": graph,
        "graph_check": graph_check,
        "threads": torch.get_num_threads(),
        "autotune": autotune,
    }


def probe_formats(config: AuditConfig) -> list[str]:
    """The memory formats `--batch-size auto` tries."""
    requested = config.requested_memory_format
    return ["contiguous", "channels_last"] if requested == "auto" else [requested]


def probe_graphs(setup: AuditSetup) -> list[str]:
    """The graphs `--batch-size auto` tries: eager, and those the run may use besides
    (`AuditSetup.graph_kinds`: the one `--graph` asks for, or under `auto` ONNX Runtime's
    and the frozen one, where a traced graph can apply)."""
    return ["eager", *setup.graph_kinds]


def check_fixed_graph(setup: AuditSetup, batch_size: int, memory_format: str, kind: str) -> tuple:
    """`--graph frozen` or `onnx` at a fixed batch size, decided before the first chunk: the
    graph is built and checked against eager on the first readable image's real views (a
    batch of the run's size). Returns the run's graph and the check's record (with the
    reason when it stays eager)."""
    views, source = probe_views(setup, limit=batch_size)
    forward = _make_forward(setup, memory_format)
    try:
        with engine_threads(setup.device):
            check, _ = forward.check_graph(views[:batch_size], kind)
    finally:
        forward.close()
    check["on"] = source
    return (kind if check["ok"] else "eager"), check


class _PendingChoice:
    """The choice of `--batch-size auto` while the probe runs on the run's own first batches
    (rank 0's): rank 0 records it in run.json once made (before committing any chunk the
    probe touched) and hands it to the other ranks, which wait for it before their first
    batch. Nothing to do when run.json already holds a choice."""

    def __init__(self, setup: AuditSetup, store: RunStore, record: RunRecord):
        self.setup = setup
        self.store = store
        self.record = record
        self.pending = is_pending(record.autotune)
        self.sent = not (self.pending and setup.ranks.distributed)

    def start(self) -> LiveProbe | None:
        """Rank 0: the probe to run, or None when the choice is known (a resumed run, or an
        earlier probe of this process that fits)."""
        if not self.pending:
            return None
        formats = self.record.autotune["formats"]
        graphs = self.record.autotune.get("graphs", ["eager"])
        earlier = earlier_choice(self.setup, formats, graphs)
        if earlier is not None:
            self.decide(earlier)
            return None
        return LiveProbe(self.setup, formats, graphs)

    def decide(self, choice: dict) -> None:
        self._take(choice)
        self.store.write_run(self.record)
        self._send(choice)

    def _take(self, choice: dict) -> None:
        record = self.record
        record.batch_size, record.memory_format = choice["batch_size"], choice["memory_format"]
        record.graph = choice.get("graph", "eager")
        record.graph_check = choice.get("graph_check")
        record.autotune = choice
        self.pending = False

    def fail(self) -> None:
        self._send(None)

    def _send(self, choice: dict | None) -> None:
        if not self.sent:
            self.sent = True
            self.setup.ranks.broadcast_object(choice)

    def wait(self) -> None:
        """Other ranks: take rank 0's choice (returns the probe to run there: none)."""
        if not self.pending:
            return None
        choice = self.setup.ranks.broadcast_object(None)
        if choice is None:
            raise JaggyError("rank 0 failed before choosing the batch size (--batch-size auto)")
        self._take(choice)
        return None


def _apply_recorded_threads(setup: AuditSetup, record: RunRecord) -> None:
    """On the CPU, use the run's recorded thread count: float sums depend on how the work is
    split between threads, so this keeps resumed sessions and other ranks bit-identical."""
    threads = record.threads
    if setup.device.type != "cpu" or threads == torch.get_num_threads():
        return
    if setup.ranks.is_main and len(record.sessions) > 1:
        print(
            f"jaggy: using {threads} CPU thread(s), as this run started with, so that its "
            f"numbers do not change (this process would use {torch.get_num_threads()})",
            flush=True,
        )
    torch.set_num_threads(threads)


def _finish(
    setup: AuditSetup,
    store: RunStore,
    record: RunRecord,
    reports: list[dict],
    started: float,
    compute_seconds: float,
    on_merged: Callable[[Path], object] | None = None,
) -> AuditResult:
    """Rank 0, once every rank is done: merge the chunks, write the per-image metrics, the
    summary (bootstrap over them) and the manifest."""
    config = setup.config
    merge_started = time.perf_counter()
    infos = store.merge(setup.n_chunks)
    store.merge_features(setup.n_chunks)
    merge_seconds = time.perf_counter() - merge_started
    if on_merged is not None:
        on_merged(store.out)
    metrics_started = time.perf_counter()
    blocks = metrics_blocks(
        store.predictions,
        seed=config.seed,
        consistency_k=config.consistency_k,
        difficulty=config.difficulty,
        pmk=config.pmk,
        feature_threshold=config.feature_threshold,
    )
    write_metrics(store.metrics, blocks, list_metrics())
    metrics_seconds = time.perf_counter() - metrics_started
    summary_started = time.perf_counter()
    summary = Summary(
        model=setup.loaded.spec,
        protocols=summarize_metrics(read_metrics(store.out), seed=config.seed),
        n_images=len(setup.items),
        n_skipped=sum(len(i.get("skipped", [])) for i in infos),
        representation=_representation_record(setup),
    )
    summary_seconds = time.perf_counter() - summary_started
    write_record(store.out / SUMMARY_FILE, summary)
    write_imagenet_p(setup, store.out, summary.to_dict(), record.identity)
    session = record.current
    session.finished = now_iso()
    session.seconds = round(time.perf_counter() - started, 3)
    session.status = "finished"
    session.chunks_by_rank = [r["chunks"] for r in reports]
    per_session = [0] * len(record.sessions)
    for info in infos:
        if 0 <= info.get("session", -1) < len(per_session):
            per_session[info["session"]] += 1
    for entry, count in zip(record.sessions, per_session, strict=True):
        entry.chunks = count
        if entry.status == "running" and entry is not session:
            entry.status = "interrupted"
    store.write_run(record)
    manifest = build_manifest(setup, record, infos)
    write_record(store.out / MANIFEST_FILE, manifest)
    first_session = len(record.sessions) == 1
    timings = {
        "autotune": _probe_cost(record.autotune) if first_session else 0.0,
        "compute": round(compute_seconds, 3),
        "merge": round(merge_seconds, 3),
        "metrics": round(metrics_seconds, 3),
        "summary": round(summary_seconds, 3),
        "total": round(time.perf_counter() - started, 3),
    }
    return AuditResult(store.out, summary, manifest, 0, timings)


def _probe_cost(autotune: dict | None) -> float:
    """Seconds the probe cost the run: beyond what the chosen configuration would have taken
    for the views the probe's batches computed (all of its time when it threw its outputs
    away)."""
    if not autotune:
        return 0.0
    return autotune.get("extra_seconds", autotune.get("seconds", 0.0))


def _representation_record(setup: AuditSetup) -> dict | None:
    """What summary.json and manifest.json record about the representation measured (None
    when the run measured only logits)."""
    if not setup.measure.features:
        return None
    return {
        **setup.measure.describe(),
        "feature_dim": setup.feature_dim,
        "headless": setup.headless,
        "distance": "cosine",
        "threshold": setup.config.feature_threshold,
        "saved": bool(setup.config.save_features),
    }


def build_manifest(setup: AuditSetup, record: RunRecord, infos: list[dict]) -> Manifest:
    config = setup.config
    skipped = [s for info in infos for s in info.get("skipped", [])]
    converted = [c for info in infos for c in info.get("converted", [])]
    backoff = [event for info in infos for event in info.get("backoff", [])]
    nonfinite_examples = [
        e for info in infos for e in info.get("nonfinite", {}).get("examples", [])
    ]
    versions = package_versions()
    return Manifest(
        jaggy_version=versions["jaggy"],
        command=command_line(),
        model=setup.loaded.describe(),
        protocols=[p.params() for p in setup.protocols],
        config=config.to_dict(),
        seed=config.seed,
        batch_size=record.batch_size,
        memory_format=record.memory_format,
        graph=record.graph,
        graph_check=record.graph_check,
        threads=record.threads,
        autotune=record.autotune,
        oom_backoff=backoff,
        nonfinite_views={
            "count": sum(info.get("nonfinite", {}).get("views", 0) for info in infos),
            "examples": nonfinite_examples[:NONFINITE_EXAMPLES],
        },
        dtype=config.dtype,
        compile=config.compile,
        device=device_description(setup.device),
        world_size=setup.ranks.world_size,
        versions=versions,
        images={
            "total": len(setup.items),
            "used": len(setup.items) - len(skipped),
            "skipped": skipped,
            "converted": converted,
            "labels": setup.label_report,
        },
        chunks={"count": setup.n_chunks, "images_per_chunk": config.chunk_images},
        started=record.first_started,
        finished=now_iso(),
        sessions=[s.to_dict() for s in record.sessions],
        video=sequence_manifest(setup).get("video"),
        representation=_representation_record(setup),
    )


MIN_VIEW_BLOCK = 32  # views made per protocol call (more when the batch is larger)


class _ChunkRows:
    def __init__(self, chunk: int):
        self.chunk = chunk
        self.rows = RowColumns()
        self.skipped: list[dict] = []
        self.converted: list[dict] = []
        self.images = 0
        self.backoff: list[dict] = []
        self.probe_views = 0  # views the probe's batches computed


def _compute_chunks(
    setup: AuditSetup,
    store: RunStore,
    forward: Forward,
    chunks: list[int],
    record: RunRecord,
    report: dict,
    show_progress: bool,
    probe: LiveProbe | None = None,
    on_chosen=None,
) -> None:
    """Compute and commit `chunks` (in order); count them and any back-off in `report`.

    `probe`: `--batch-size auto` still choosing, on these batches; `on_chosen(choice)`
    records its choice. The chunks it touched are committed only after that, so that a
    committed chunk always belongs to a recorded configuration (its batches: the schedule)."""
    if not chunks:
        return
    config = setup.config
    size = config.chunk_images
    items = [item for c in chunks for item in setup.items[c * size : (c + 1) * size]]
    prep = setup.loaded.preprocessing
    dataset = setup.dataset(items)
    workers = config.workers
    if workers is None:
        workers = default_workers(setup.device, forward.threads)
    bar = tqdm(
        total=len(items) * setup.views_per_image(),
        unit="view",
        disable=not show_progress,
        desc="audit",
        smoothing=0.05,
        dynamic_ncols=True,
    )
    batcher = _Batcher(forward, record.batch_size, bar, prep.input_size, probe, on_chosen)
    schedule = recorded_schedule(record.autotune)
    plans = [(protocol, ViewPlan(protocol)) for protocol in setup.protocols]
    current: _ChunkRows | None = None
    held: list[_ChunkRows] = []  # done, waiting for the probe's choice to be recorded
    decoded_stream = iterate_decoded(
        dataset,
        workers,
        pin_memory=setup.device.type == "cuda",
        background=setup.device.type == "cpu",
        ahead=0 if setup.reads_sequences else DECODE_AHEAD,  # a whole video is big: inline
    )
    context = {"session": record.current.session, "rank": setup.ranks.rank, "run_id": record.run_id}
    # the report's thumbnails, shrunk and written on a low-priority background thread
    thumbnails = ThumbnailWriter(store.out, record.run_id, prep, lower_thread_priority)

    def close(chunk: _ChunkRows) -> None:
        batcher.flush()
        batcher.forward.drain()
        chunk.backoff = batcher.take_backoff()
        chunk.probe_views = batcher.take_probe_views()
        held.append(chunk)
        if batcher.probe is None:
            thumbnails.wait()  # a committed chunk's images have their files (see _thumbnails)
            for done in held:
                _commit(store, batcher, done, context, report, setup.loaded)
            held.clear()

    try:
        for decoded in decoded_stream:
            chunk = decoded.item.index // size
            if current is None or chunk != current.chunk:
                if current is not None:
                    close(current)
                current = _ChunkRows(chunk)
                batcher.start_chunk(current, schedule.get(chunk))
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
            _enqueue_image(setup, plans, batcher, decoded, thumbnails)
        if current is not None:
            if held or batcher.probe is not None:
                batcher.flush()
                batcher.forward.drain()
                batcher.end_probe()  # the run's views ended first: choose from what ran
            close(current)
    finally:
        decoded_stream.close()
        thumbnails.close()
        bar.close()


def _enqueue_image(
    setup: AuditSetup,
    plans: list[tuple[Protocol, ViewPlan]],
    batcher: _Batcher,
    decoded: DecodedImage,
    thumbnails: ThumbnailWriter | None = None,
) -> None:
    """Make every view of one image (on the device) and hand them to the batcher, cut where
    a batch fills up. Views are made in blocks of at least a batch, so that a batch is
    usually a slice of one block (no copy) rather than pieces to assemble."""
    prep = setup.loaded.preprocessing
    item = decoded.item
    block = max(batcher.batch_size, MIN_VIEW_BLOCK)
    normalized: dict[str, torch.Tensor] = {}
    shown = thumbnails.image(item.index, item.image_id) if thumbnails else None
    for protocol, plan in plans:
        bound = protocol.for_image(item.image_id)
        if bound is not protocol:  # views drawn per image
            protocol, plan = bound, ViewPlan(bound)
        key = protocol.source().key
        if key not in normalized:
            source = decoded.sources[key].to(setup.device, non_blocking=True)
            normalized[key] = prep.normalize(source)
        if protocol.reads_sequences:  # as many views as the sequence has frames
            plan = ViewPlan(protocol, protocol.view_params_for(normalized[key]))
        if protocol.worst_case and not protocol.exhaustive:
            _search_until_failure(protocol, plan, normalized[key], item, batcher)
            continue
        for first in range(0, len(plan), block):
            last = min(first + block, len(plan))
            views = protocol.make_views(normalized[key], range(first, last))
            if shown is not None:
                shown.add(plan.key, len(plan), first, views)
            start = first
            while start < last:
                take = min(batcher.room(), last - start)
                segment = Segment(item.index, item.image_id, item.label, plan, start, take)
                batcher.add(views[start - first : start - first + take], segment)
                start += take
    if shown is not None:
        thumbnails.write(shown)


def _search_until_failure(
    protocol: Protocol, plan: ViewPlan, source: torch.Tensor, item, batcher: _Batcher
) -> None:
    """Early exit of a worst-case set: the image's views go in batches of their own, in
    order, and the search stops after the first batch with a view that does not hold (top-1
    not c*, or an output not finite). The rows up to the end of that batch are kept; the
    first failing view is among them, as in an exhaustive run."""
    batcher.flush()  # the views before this search run now, so its batches are its own
    batcher.forward.drain()
    first = 0
    while first < len(plan):
        batcher.configure()
        last = min(first + batcher.batch_size, len(plan))
        seen = len(batcher.rows.blocks)
        views = protocol.make_views(source, range(first, last))
        batcher.add(
            views, Segment(item.index, item.image_id, item.label, plan, first, last - first)
        )
        batcher.flush()
        batcher.forward.drain()
        first = last
        if any(
            not view_holds(b["top1"], b["ref_class"], b["finite"]).all()
            for b in batcher.rows.blocks[seen:]
        ):
            batcher.bar.update(len(plan) - first)  # the views the search skips
            return


def _commit(
    store: RunStore,
    batcher: _Batcher,
    chunk: _ChunkRows,
    context: dict,
    report: dict,
    loaded: LoadedModel,
) -> None:
    table = _with_saved_features(
        chunk.rows.to_table(PREDICTION_SCHEMA), chunk.rows, batcher.forward
    )
    nonfinite = _nonfinite_views(table)
    report["views"] += table.num_rows
    report["nonfinite"] += nonfinite["views"]
    if report["nonfinite"] * 2 > report["views"]:
        raise JaggyError(_nonfinite_cause(loaded, nonfinite, report))
    backoff = [{**event, "chunk": chunk.chunk, **context} for event in chunk.backoff]
    info = {
        "chunk": chunk.chunk,
        "images": chunk.images,
        "skipped": chunk.skipped,
        "converted": chunk.converted,
        "batch_size": batcher.base_batch_size,
        "backoff": backoff,
        "nonfinite": nonfinite,
        **context,
    }
    if chunk.probe_views:
        info["probe_views"] = chunk.probe_views  # their batches: autotune's schedule
    store.write_chunk(chunk.chunk, table, info)
    report["chunks"] += 1
    report["backoff"].extend(backoff)


def _with_saved_features(table, rows: RowColumns, forward: Forward):
    """The chunk table with its rows' feature vectors (--save-features) as a last column, so
    that they are committed with the rows; the merge moves them to features.npy."""
    if not forward.save_features:
        return table
    vectors = rows.features()
    if vectors is None:  # a chunk whose every image was skipped
        vectors = np.zeros((0, forward.feature_dim or 0), dtype=np.float32)
    return table.append_column(FEATURES_COLUMN, features_column(vectors))


NONFINITE_EXAMPLES = 5


def _nonfinite_views(table) -> dict:
    """How many views of a chunk had a NaN or Inf logit, with the first few."""
    finite = table.column("finite").to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~finite)
    examples = [
        {
            "image_id": table.column("image_id")[int(i)].as_py(),
            "protocol": table.column("protocol")[int(i)].as_py(),
            "view": table.column("view")[int(i)].as_py(),
        }
        for i in bad[:NONFINITE_EXAMPLES]
    ]
    return {"views": int(len(bad)), "examples": examples}


def _nonfinite_cause(loaded: LoadedModel, nonfinite: dict, report: dict) -> str:
    """Most views are non-finite: say why, as far as it can be told."""
    share = f"{report['nonfinite']} of {report['views']} views so far"
    example = nonfinite["examples"][0] if nonfinite["examples"] else None
    where = f" (first: {example['image_id']}, {example['protocol']} view {example['view']})"
    broken = loaded.nonfinite_tensors()
    if broken:
        return (
            f"the model's weights hold NaN or Inf ({', '.join(broken[:3])}), so its outputs "
            f"are NaN or Inf for {share}; check the checkpoint"
        )
    return (
        f"the model outputs NaN or Inf for {share}{where if example else ''}; no metric is "
        "defined on such views: check the model's forward, its preprocessing and --dtype"
    )


class _Batcher:
    """Collects views into batches of exactly `batch_size` (the last of a chunk may be
    smaller) and runs them. Views are copied once, straight into a batch tensor laid out in
    the model's memory format.

    The configuration of each batch: the run's, or while `--batch-size auto` chooses, the
    probe's (`probe`, told what each batch took; `on_chosen` gets its choice), or for a chunk
    the probe touched that is computed again on resume, the recorded batches (`script`).

    Out of memory on a batch: halve the batch size, free the cache, rerun the same views in
    pieces of the new size; the smaller size stays for the rest of the session and every
    halving is recorded (chunk info and manifest `oom_backoff`)."""

    def __init__(
        self,
        forward: Forward,
        batch_size: int,
        bar,
        input_size: int,
        probe: LiveProbe | None = None,
        on_chosen=None,
    ):
        self.forward = forward
        self.base_batch_size = batch_size  # the run's configuration, after any back-off
        self.base_memory_format = forward.memory_format
        self.base_graph = forward.graph
        self.check_graph: str | None = None  # the probe's graph not checked yet: check first
        self.batch_size = batch_size
        self.bar = bar
        self.input_size = input_size
        self.probe = probe
        self.on_chosen = on_chosen
        self.chunk = -1
        self.script: list[list] = []
        self.probe_views = 0
        self.views: list[torch.Tensor] = []
        self.segments: list[Segment] = []
        self.filled = 0
        self.rows = RowColumns()
        self._backoff: list[dict] = []
        self.configure()

    def start_chunk(self, chunk: _ChunkRows, script: list[list] | None) -> None:
        self.chunk = chunk.chunk
        self.rows = chunk.rows
        self.script = list(script or [])
        self.configure()

    def configure(self) -> None:
        """Set the batch size and memory format of the next batch (between batches only)."""
        if self.filled:
            return
        probe = self.probe
        if self.script:
            batch_size, memory_format, graph = self.script[0]
        elif probe is not None:
            batch_size, memory_format, graph = probe.batch_size, probe.memory_format, probe.graph
        else:
            batch_size, memory_format, graph = (
                self.base_batch_size,
                self.base_memory_format,
                self.base_graph,
            )
        self.batch_size = int(batch_size)
        if memory_format != self.forward.memory_format:
            self.forward.set_memory_format(memory_format)
        # The probe's graph is checked against eager on its first batch before use (that
        # batch's rows are the check's eager outputs); a recorded choice (schedule, resumed
        # run, other rank) was checked when it was made.
        checking = (
            graph != "eager"
            and probe is not None
            and not self.script
            and not self.forward.is_checked(graph)
        )
        self.check_graph = graph if checking else None
        self.forward.set_graph("eager" if checking else graph)

    def room(self) -> int:
        return self.batch_size - self.filled

    def add(self, views: torch.Tensor, segment: Segment) -> None:
        self.views.append(views)
        self.segments.append(segment)
        self.filled += segment.count
        if self.filled >= self.batch_size:
            self.flush()

    def _assemble(self) -> torch.Tensor:
        first = self.views[0]
        fmt = self.forward.torch_memory_format
        if len(self.views) == 1 and first.is_contiguous(memory_format=fmt):
            return first
        r = self.input_size
        batch = torch.empty(
            (self.filled, 3, r, r), dtype=first.dtype, device=first.device, memory_format=fmt
        )
        position = 0
        for views in self.views:
            batch[position : position + len(views)].copy_(views)
            position += len(views)
        return batch

    def flush(self) -> None:
        if not self.segments:
            return
        batch = self._assemble()
        segments, total = self.segments, self.filled
        self.views, self.segments, self.filled = [], [], 0
        start = 0
        while start < total:
            take = min(self.batch_size, total - start)
            probing = self.probe is not None and not self.script
            self.forward.time_outputs = probing
            checking, known = 0.0, None
            if probing and self.check_graph:
                checking, known = self._check_graph(batch[start : start + take])
            try:
                self.forward.run(
                    batch[start : start + take],
                    take_segments(segments, start, take),
                    self.rows,
                    outputs=known,
                )
            except RuntimeError as exc:
                if not is_out_of_memory(exc):
                    raise
                if probing:  # a configuration the probe no longer tries
                    free_cached_memory(self.forward.device)
                    self._observe(take, None)
                else:
                    self.script = []
                    self._back_off(take, exc)
                continue
            if self.script:
                self.script.pop(0)
            elif probing:
                self.probe_views += take
                self._observe(take, self.forward.last_seconds + checking)
            self.bar.update(take)
            start += take
            self.configure()

    def _check_graph(self, views: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Check the probe's graph on the batch about to run, whose rows are the check's
        eager outputs; the next batches run through the graph when the check passes, else
        eagerly (the probe records why). Returns the check's seconds (the graph's build
        and its eager forward included), part of what the batch cost, and those outputs."""
        kind, self.check_graph = self.check_graph, None
        check, eager = self.forward.check_graph(views, kind)
        self.probe.graph_checked(check)
        return check["seconds"], eager

    def _observe(self, take: int, seconds: float | None) -> None:
        self.probe.observe(self.chunk, take, seconds, self.forward.graph)
        if self.probe.done:
            self.end_probe()
        self.configure()

    def end_probe(self) -> None:
        """Take the probe's choice (made, or from what ran so far) for the rest of the run."""
        if self.probe is None:
            return
        choice = self.probe.finish()
        self.probe = None
        self.forward.time_outputs = False
        self.base_batch_size = choice["batch_size"]
        self.base_memory_format = choice["memory_format"]
        self.base_graph = choice.get("graph", "eager")
        if self.on_chosen is not None:
            self.on_chosen(choice)
        self.configure()

    def take_probe_views(self) -> int:
        views, self.probe_views = self.probe_views, 0
        return views

    def _back_off(self, failed_size: int, exc: RuntimeError) -> None:
        if failed_size <= 1:
            raise JaggyError(
                f"out of memory even with one view per batch ({exc}); use a smaller model, "
                "another device, or --dtype float16/bfloat16"
            ) from exc
        new_size = max(1, failed_size // 2)
        self._backoff.append({"from": failed_size, "to": new_size})
        self.batch_size = self.base_batch_size = new_size
        free_cached_memory(self.forward.device)

    def take_backoff(self) -> list[dict]:
        events, self._backoff = self._backoff, []
        return events
