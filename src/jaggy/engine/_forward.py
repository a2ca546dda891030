"""Batches of views -> prediction rows (top-5, reference and previous-top-1 probabilities,
and the representation change of each view against the view it is paired with).

The per-view bookkeeping is done per *segment* (consecutive views of one image's protocol
sequence) with numpy, and everything that depends on the model's answers (the reference class
c*, the previous view's top-1 and their probabilities) is computed on the device. So a batch
costs the host a handful of small array operations whatever its size, and on a GPU the rows of
one batch are collected while the next batch runs (one batch in flight). On a CPU, where the
batches the probe chooses hold 1-4 views, the outputs of consecutive batches are collected and
their rows made together (`ROW_GROUP_VIEWS`): the same per-row operations on more rows at once,
so the same numbers, at a fraction of the per-batch cost.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from ..errors import JaggyError
from ._graph import ModelGraphs, compare_outputs
from ._measure import FeatureTap, Measure
from ._threads import torch_threads

# Calls of the batch's shape after a graph's first one in its check: TorchScript's executor
# profiles a shape's first call and optimises on the next ones; ONNX Runtime plans its
# memory on the first call. The last one's bits must equal the first one's.
GRAPH_WARM_CALLS = {"frozen": 2, "onnx": 1}
AUTOCAST_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
# On a CPU, the rows of up to this many views' outputs are made at once (see the module doc):
# at batch 1 that costs 0.1 ms of the host per view instead of 0.55.
ROW_GROUP_VIEWS = 64
TORCH_MEMORY_FORMATS = {
    "contiguous": torch.contiguous_format,
    "channels_last": torch.channels_last,
}


class ViewPlan:
    """The view parameters of one protocol instance as arrays (dx, dy in px; size in px;
    angle in degrees)."""

    def __init__(self, protocol, params=None):
        params = protocol.view_params() if params is None else params
        self.key = protocol.key
        self.name = protocol.name
        self.dx = np.array([float(p.dx) for p in params], dtype=np.float64)
        self.dy = np.array([float(p.dy) for p in params], dtype=np.float64)
        self.size = np.array([int(p.size) for p in params], dtype=np.int32)
        self.angle = np.array([float(p.angle) for p in params], dtype=np.float64)
        self.pairing = protocol.pairing  # which earlier view a view's changes are against

    def __len__(self) -> int:
        return len(self.dx)


@dataclass(frozen=True)
class Segment:
    """Views start .. start+count-1 of the sequence (image, protocol), consecutive in a batch."""

    image_index: int
    image_id: str
    label: int
    plan: ViewPlan
    start: int
    count: int

    def split(self, offset: int) -> tuple[Segment, Segment]:
        """The first `offset` views and the rest."""
        head = Segment(self.image_index, self.image_id, self.label, self.plan, self.start, offset)
        tail = Segment(
            self.image_index,
            self.image_id,
            self.label,
            self.plan,
            self.start + offset,
            self.count - offset,
        )
        return head, tail


def merge_segments(segments: list[Segment]) -> list[Segment]:
    """`segments` with each run of consecutive views of one sequence as one segment."""
    out: list[Segment] = []
    for s in segments:
        last = out[-1] if out else None
        if (
            last is not None
            and last.image_index == s.image_index
            and last.plan is s.plan
            and last.start + last.count == s.start
        ):
            out[-1] = Segment(
                last.image_index,
                last.image_id,
                last.label,
                last.plan,
                last.start,
                last.count + s.count,
            )
        else:
            out.append(s)
    return out


def take_segments(segments: list[Segment], start: int, count: int) -> list[Segment]:
    """The segments covering batch positions start .. start+count-1 (split where needed)."""
    out, position = [], 0
    for segment in segments:
        lo, hi = position, position + segment.count
        position = hi
        if hi <= start or lo >= start + count:
            continue
        if lo < start:
            segment = segment.split(start - lo)[1]
            lo = start
        if hi > start + count:
            segment = segment.split(start + count - lo)[0]
        out.append(segment)
    return out


class RowColumns:
    """Blocks of prediction rows (numpy columns), turned into one arrow table on commit."""

    def __init__(self):
        self.blocks: list[dict[str, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(b["view"]) for b in self.blocks)

    def add(self, block: dict[str, np.ndarray]) -> None:
        self.blocks.append(block)

    def features(self) -> np.ndarray | None:
        """The saved feature vectors of the rows [N, D] float32, in row order (None when the
        run does not save them)."""
        if not self.blocks or "features" not in self.blocks[0]:
            return None
        return np.concatenate([b["features"] for b in self.blocks])

    def to_table(self, schema: pa.Schema) -> pa.Table:
        names = schema.names
        if not self.blocks:
            return schema.empty_table()
        columns = {n: np.concatenate([b[n] for b in self.blocks]) for n in names}
        arrays = []
        for field in schema:
            values = columns[field.name]
            if field.name in ("top5_ids", "top5_probs"):
                flat = pa.array(values.reshape(-1), type=field.type.value_type)
                offsets = pa.array(np.arange(0, len(flat) + 1, 5, dtype=np.int32))
                arrays.append(pa.ListArray.from_arrays(offsets, flat))
            elif field.name == "p_prev_top1":
                has = np.concatenate([b["has_prev"] for b in self.blocks])
                arrays.append(pa.array(values, type=field.type, mask=~has))
            elif field.name in ("feat_cos", "feat_rel_l2"):  # null where undefined
                arrays.append(pa.array(values, type=field.type, mask=np.isnan(values)))
            else:
                arrays.append(pa.array(values, type=field.type))
        return pa.Table.from_arrays(arrays, schema=schema)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocation failure of the device (CUDA, MPS) or of the CPU allocator."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def set_memory_format(module: nn.Module, memory_format: str) -> nn.Module:
    """Put the module's 4-d parameters in `memory_format` ('contiguous' | 'channels_last').
    In place (like `nn.Module.to`); values are unchanged, only their layout."""
    return module.to(memory_format=TORCH_MEMORY_FORMATS[memory_format])


@dataclass
class _Computed:
    """A batch's outputs whose rows are not made yet (`Forward.run`)."""

    logits: torch.Tensor | None
    features: torch.Tensor | None
    segments: list[Segment]
    rows: RowColumns
    views: int


@dataclass
class _Pending:
    """A batch whose answers are (being) copied to the host."""

    segments: list[Segment]
    rows: RowColumns
    ints: torch.Tensor  # [B, 7]: top-5 ids, reference class, finite (1 when every output is)
    # [B, 9]: top-5 probabilities, p(reference), p(previous top-1), feat_cos, feat_rel_l2
    floats: torch.Tensor
    has_prev: np.ndarray
    ready: torch.cuda.Event | None
    features: torch.Tensor | None = None  # [B, D] on the host, when the run saves them


class Forward:
    """Runs the model on view batches and turns its outputs into rows.

    Keeps, for the sequence in progress at the end of a batch, its reference class c* (label,
    else view 0's top-1) and the last view's top-1 (on the device), so rows carry `p_ref` and
    `p_prev_top1` exactly, from the full probability vector. A batch that fails (e.g. out of
    memory) changes neither that state nor any rows, so it can be rerun in smaller pieces.

    With a `measure` that asks for features, it keeps the last view's feature vector too, so
    `feat_cos` and `feat_rel_l2` compare every view with the view it is paired with (the
    previous one; for disjoint pairs, the first of its pair) even across batches.
    """

    def __init__(
        self,
        module: nn.Module,
        device: torch.device,
        dtype: str = "float32",
        memory_format: str = "contiguous",
        compile: bool = False,
        measure: Measure | None = None,
        headless: bool = False,
        save_features: bool = False,
        feature_dim: int | None = None,
        graph: str = "eager",
        graphs: ModelGraphs | None = None,
    ):
        self.device = device
        self.threads = torch.get_num_threads()  # the run's: the forward's numbers depend on it
        self.memory_format = memory_format
        self.torch_memory_format = TORCH_MEMORY_FORMATS[memory_format]
        self.module = set_memory_format(module, memory_format)
        self.measure = measure or Measure()
        self.save_features = save_features and self.measure.features
        self.feature_dim = feature_dim  # D, for the saved vectors of a chunk without rows
        # hooks go on the eager module (a compiled one runs them too, but cannot stop early)
        self.tap = FeatureTap(self.module, self.measure, headless=headless, stop_early=not compile)
        if compile:
            self.tap.module = torch.compile(self.module)
        self.autocast_dtype = AUTOCAST_DTYPES.get(dtype)
        self.in_flight = 1 if device.type == "cuda" else 0
        self._pending: list[_Pending] = []
        # a GPU's rows are collected while the next batch runs: a group of one batch there
        self.row_group_views = ROW_GROUP_VIEWS if device.type == "cpu" else 1
        self._group: list[_Computed] = []  # outputs whose rows are not made yet
        self._carry_key: tuple[int, str, int] | None = None  # (image, protocol, next view)
        self._submitted_key: tuple[int, str, int] | None = None  # ... of the last batch run
        self._carry_top1 = torch.zeros(1, dtype=torch.long, device=device)
        self._carry_ref = torch.zeros(1, dtype=torch.long, device=device)
        self._carry_features: torch.Tensor | None = None  # [1, D] of the last view
        self.time_outputs = False  # measure each batch's forward (the probe's timings)
        self.last_seconds = 0.0  # ... into this, the device synchronised before and after
        self.graphs = graphs  # the graphs of the module (None: eager only)
        # (graph, memory format) -> it passed check_graph
        self.checked: dict[tuple[str, str], bool] = {}
        self.graph = "eager"
        self.set_graph(graph)

    def set_graph(self, graph: str) -> None:
        """Run the next batches eagerly ('eager') or through a graph ('frozen', 'onnx'),
        like `set_memory_format` between any two batches."""
        if graph != "eager" and self.graphs is None:
            raise JaggyError(
                f"this run's record asks for the {graph} graph (--graph), which cannot apply "
                "to the model now; rerun into a new --out"
            )
        self.graph = graph

    def graph_format(self, graph: str) -> str:
        """The memory format a graph runs in: ONNX Runtime's takes contiguous arrays."""
        return "contiguous" if graph == "onnx" else self.memory_format

    def is_checked(self, graph: str) -> bool:
        return bool(self.checked.get((graph, self.graph_format(graph))))

    def check_graph(self, views: torch.Tensor, kind: str) -> tuple[dict, torch.Tensor]:
        """Build (or find) the `kind` graph of the current memory format and compare its
        outputs with eager outputs on `views` and on its first view alone (a trace that
        baked in the batch size shows there); a later call on `views` must give the first
        one's bits. Returns `compare_outputs`' record with the seconds it took (and those
        of its eager forward), 'ok' false with a 'reason' when the graph is not to be used,
        and the eager outputs on `views` (which `run(..., outputs=)` takes, so that the
        probe's check on a real batch costs no extra eager forward)."""
        started = time.perf_counter()
        views = views.contiguous(memory_format=self.torch_memory_format)
        with torch.inference_mode(), self._model_threads():
            eager = self.tap.module(views)
        eager_seconds = time.perf_counter() - started
        try:
            graph = self.graphs.get(kind, self.torch_memory_format, self.threads)
        except Exception as exc:  # a model that tracing or the exporter cannot follow
            what = "the export" if kind == "onnx" else "tracing"
            reason = f"{what} failed: {type(exc).__name__}: {exc}"
            return _refused(reason, started, eager_seconds), eager
        with torch.inference_mode(), self._model_threads():
            try:
                first = graph(views)
                single = graph(views[:1].contiguous(memory_format=self.torch_memory_format))
                # warm the graph on the batch's shape, so that timings measure its speed
                for _ in range(GRAPH_WARM_CALLS[kind]):
                    again = graph(views)
            except Exception as exc:
                reason = f"the graph failed: {type(exc).__name__}: {exc}"
                return _refused(reason, started, eager_seconds), eager
        record = compare_outputs(first, eager)
        if record["ok"]:
            alone = compare_outputs(single, eager[:1])
            if not alone["ok"]:
                record = {**alone, "reason": f"on one view, {alone['reason']}"}
        if record["ok"] and not torch.equal(first, again):
            record["ok"] = False
            record["reason"] = (
                "a later call on the same batch gave other bits than the first: rows would "
                "depend on the order of calls, so a resumed or sharded run could not repeat them"
            )
        record["graph"] = kind
        record["views"] = len(views)
        record["memory_format"] = self.graph_format(kind)
        if kind == "onnx":
            record["threads"] = self.threads  # its session's intra-op threads
        name = ModelGraphs.name(kind, self.torch_memory_format)
        record["build_seconds"] = self.graphs.build_seconds.get(name)
        record["eager_seconds"] = round(eager_seconds, 3)
        record["seconds"] = round(time.perf_counter() - started, 3)
        self.checked[(kind, self.graph_format(kind))] = record["ok"]
        return record, eager

    def set_memory_format(self, memory_format: str) -> None:
        """Run the next batches in `memory_format`; the sequence state carries over, so a
        run can change format between any two batches (the probe does)."""
        self.memory_format = memory_format
        self.torch_memory_format = TORCH_MEMORY_FORMATS[memory_format]
        set_memory_format(self.module, memory_format)

    def outputs(
        self, views: torch.Tensor, given: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(logits [B, K] or None, features [B, D] float32 or None), as the measure asks.
        `given`: the model's outputs on `views`, known already (no forward runs)."""
        views = views.contiguous(memory_format=self.torch_memory_format)
        context = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        graph = None
        if given is not None:
            graph = _Given(given)
        elif self.graph != "eager":
            graph = self.graphs.get(self.graph, self.torch_memory_format, self.threads)
        with torch.inference_mode(), context, self._model_threads():
            return self.tap(views, graph)

    def _model_threads(self):
        """The context of the model's own calls: the run's threads on a CPU."""
        if self.device.type != "cpu":
            return contextlib.nullcontext()
        return torch_threads(self.threads)

    def close(self) -> None:
        """Remove the feature hooks from the module."""
        self.tap.close()

    def run(
        self,
        views: torch.Tensor,
        segments: list[Segment],
        rows: RowColumns,
        outputs: torch.Tensor | None = None,
    ) -> None:
        """Forward `views` [B, 3, R, R] (the views of `segments`, in order); their rows go to
        `rows`, at the latest when `drain` is called. `outputs`: the model's outputs on
        `views` when they are known already (`check_graph`'s eager ones). A batch that fails
        changes no state, so that it can be rerun (in smaller pieces)."""
        key = self._next_key(segments)
        if self.time_outputs:
            synchronize(self.device)
            started = time.perf_counter()
        logits, features = self.outputs(views, outputs)
        if self.time_outputs:
            synchronize(self.device)
            self.last_seconds = time.perf_counter() - started
        if self._group and self._group[0].rows is not rows:
            self._make_rows()
        computed = _Computed(logits, features, segments, rows, len(views))
        self._group.append(computed)
        if sum(c.views for c in self._group) >= self.row_group_views:
            try:
                self._make_rows()
            except BaseException:
                if self._group and self._group[-1] is computed:
                    self._group.pop()  # as if this batch had not run
                raise
        self._submitted_key = key

    def drain(self) -> None:
        """Collect the rows of every batch run so far."""
        self._make_rows()
        while self._pending:
            self._finish(self._pending.pop(0))

    def _next_key(self, segments: list[Segment]) -> tuple[int, str, int] | None:
        """The sequence position after `segments`; RuntimeError when they do not continue the
        views run so far."""
        key = self._submitted_key
        for s in segments:
            if s.start > 0 and key != (s.image_index, s.plan.key, s.start):
                raise RuntimeError(f"views of {s.image_id}/{s.plan.key} arrived out of order")
            key = (s.image_index, s.plan.key, s.start + s.count)
        return key

    def _make_rows(self) -> None:
        """The rows of the batches collected so far, made together (the group is kept when
        this fails)."""
        group = self._group
        if not group:
            return
        if len(group) == 1:
            logits, features = group[0].logits, group[0].features
        else:
            logits = None if group[0].logits is None else torch.cat([c.logits for c in group])
            features = None if group[0].features is None else torch.cat([c.features for c in group])
        segments = merge_segments([s for c in group for s in c.segments])
        n = sum(c.views for c in group)
        self._pending.append(self._submit(logits, features, n, segments, group[0].rows))
        self._group = []
        while len(self._pending) > self.in_flight:
            self._finish(self._pending.pop(0))

    def _plan(self, segments: list[Segment]):
        """Host-side index plan of a batch: where each view's previous top-1 and reference
        class come from, in ext = [carried value, top-1 of batch position 0, 1, ...]."""
        n = sum(s.count for s in segments)
        prev_pos = np.zeros(n, dtype=np.int64)  # ext position of the previous view's top-1
        ref_pos = np.zeros(n, dtype=np.int64)  # ext position of view 0's top-1
        labels = np.full(n, -1, dtype=np.int64)
        has_prev = np.ones(n, dtype=bool)
        paired = np.ones(n, dtype=bool)  # the view has an earlier view to compare with
        carry = self._carry_key
        i = 0
        for s in segments:
            j = i + s.count
            continues = carry == (s.image_index, s.plan.key, s.start)
            if s.start > 0 and not continues:
                raise RuntimeError(f"views of {s.image_id}/{s.plan.key} arrived out of order")
            prev_pos[i:j] = np.arange(i, j)  # ext[i] is the top-1 of batch position i - 1
            if continues:
                prev_pos[i] = 0  # the carried top-1
                ref_pos[i:j] = 0  # the carried reference class
            else:
                has_prev[i] = False  # view 0
                ref_pos[i:j] = i + 1
            labels[i:j] = s.label
            if s.plan.pairing == "disjoint":  # view 2k + 1 against view 2k only
                paired[i:j] = np.arange(s.start, s.start + s.count) % 2 == 1
            else:
                paired[i:j] = has_prev[i:j]
            carry = (s.image_index, s.plan.key, s.start + s.count)
            i = j
        return prev_pos, ref_pos, labels, has_prev, paired, carry

    def _submit(
        self, logits, features, n: int, segments: list[Segment], rows: RowColumns
    ) -> _Pending:
        """The rows of `n` views' outputs (logits [n, K] or None, features [n, D] or None) of
        `segments`, on their way to the host."""
        prev_pos, ref_pos, labels, has_prev, paired, carry = self._plan(segments)
        device = self.device
        with torch.inference_mode():
            prev_index = torch.from_numpy(prev_pos).to(device)
            if logits is not None:
                ints, floats, top1, ref = self._class_outputs(logits, labels, ref_pos, prev_index)
            else:  # no logits measured: class columns hold -1 / NaN
                ints = torch.full((n, 7), -1, dtype=torch.int32, device=device)
                ints[:, 6] = 1
                floats = torch.full((n, 7), float("nan"), device=device)
                top1 = ref = None
            if features is not None:
                change = self._feature_change(features, prev_index, paired)
                ints[:, 6] &= torch.isfinite(features).all(dim=-1).int()
            else:
                change = torch.full((n, 2), float("nan"), device=device)
            floats = torch.cat([floats, change], dim=1)
            saved = features if self.save_features else None
            ready = None
            if device.type == "cuda":
                ints, floats, saved = (_to_pinned(t) for t in (ints, floats, saved))
                ready = torch.cuda.Event()
                ready.record()
            elif device.type != "cpu":
                ints, floats = ints.cpu(), floats.cpu()
                saved = saved.cpu() if saved is not None else None
        # Everything that can fail is done: carry the sequence state to the next batch.
        self._carry_key = carry
        if top1 is not None:
            self._carry_top1 = top1[-1:]
            self._carry_ref = ref[-1:]
        if features is not None:
            self._carry_features = features[-1:]
        return _Pending(segments, rows, ints, floats, has_prev, ready, saved)

    def _class_outputs(self, logits, labels, ref_pos, prev_index):
        """ints [B, 7], floats [B, 7] (see `_Pending`), the top-1 and the reference class."""
        device = self.device
        probs = logits.float().softmax(dim=-1)
        top5_probs, top5_ids = probs.topk(5, dim=-1)
        top1 = top5_ids[:, 0]
        ext_top1 = torch.cat([self._carry_top1, top1])
        ext_ref = torch.cat([self._carry_ref, top1])
        label_t = torch.from_numpy(labels).to(device, non_blocking=True)
        ref = torch.where(label_t >= 0, label_t, ext_ref[torch.from_numpy(ref_pos).to(device)])
        prev_top1 = ext_top1[prev_index]
        p_ref = probs.gather(1, ref[:, None])
        p_prev = probs.gather(1, prev_top1[:, None])
        finite = torch.isfinite(logits).all(dim=-1)  # NaN/Inf: the view's answer is void
        ints = torch.cat([top5_ids, ref[:, None], finite[:, None]], dim=1).int()
        floats = torch.cat([top5_probs, p_ref, p_prev], dim=1)
        return ints, floats, top1, ref

    def _feature_change(self, features, prev_index, paired) -> torch.Tensor:
        """[B, 2]: cosine distance and relative L2 change of each view's features against
        its paired earlier view's (NaN where it has none); see `representation_change`."""
        carried = self._carry_features
        if carried is None or carried.shape[1] != features.shape[1]:
            carried = torch.zeros_like(features[:1])
        earlier = torch.cat([carried, features])[prev_index]
        change = torch.stack(representation_change(earlier, features), dim=1)
        mask = torch.from_numpy(paired).to(features.device)
        return torch.where(mask[:, None], change, torch.full_like(change, float("nan")))

    def _finish(self, pending: _Pending) -> None:
        if pending.ready is not None:
            pending.ready.synchronize()
        ints = pending.ints.numpy()
        floats = pending.floats.numpy()
        segments = pending.segments
        counts = [s.count for s in segments]

        def per_view(values, dtype) -> np.ndarray:
            return np.repeat(np.array(values, dtype=dtype), counts)

        view = np.concatenate([np.arange(s.start, s.start + s.count) for s in segments])
        plan_slices = [slice(s.start, s.start + s.count) for s in segments]
        pending.rows.add(
            {
                "image_index": per_view([s.image_index for s in segments], np.int32),
                "image_id": per_view([s.image_id for s in segments], object),
                "protocol": per_view([s.plan.key for s in segments], object),
                "protocol_name": per_view([s.plan.name for s in segments], object),
                "view": view.astype(np.int32),
                "dx": np.concatenate(
                    [s.plan.dx[k] for s, k in zip(segments, plan_slices, strict=True)]
                ),
                "dy": np.concatenate(
                    [s.plan.dy[k] for s, k in zip(segments, plan_slices, strict=True)]
                ),
                "size": np.concatenate(
                    [s.plan.size[k] for s, k in zip(segments, plan_slices, strict=True)]
                ),
                "angle": np.concatenate(
                    [s.plan.angle[k] for s, k in zip(segments, plan_slices, strict=True)]
                ),
                "label": per_view([s.label for s in segments], np.int32),
                "ref_class": ints[:, 5].copy(),
                "finite": ints[:, 6] != 0,
                "top1": ints[:, 0].copy(),
                "top5_ids": ints[:, :5].copy(),
                "top5_probs": floats[:, :5].copy(),
                "p_ref": floats[:, 5].copy(),
                "p_prev_top1": floats[:, 6].copy(),
                "feat_cos": floats[:, 7].copy(),
                "feat_rel_l2": floats[:, 8].copy(),
                "has_prev": pending.has_prev,
                **({} if pending.features is None else {"features": pending.features.numpy()}),
            }
        )


def representation_change(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine distance and relative L2 change from features `a` [N, D] to `b` [N, D].

    cosine distance = 1 - <a, b> / (|a| |b|), computed as |a/|a| - b/|b||^2 / 2 (the same
    number, without the cancellation of 1 - cos for nearly equal vectors); relative L2 =
    |b - a| / |a|. Both in float32; NaN where |a| or |b| is 0 (no direction to compare).
    """
    a, b = a.float(), b.float()
    na, nb = a.norm(dim=1), b.norm(dim=1)
    defined = (na > 0) & (nb > 0)
    unit_a = a / torch.where(na > 0, na, 1.0)[:, None]
    unit_b = b / torch.where(nb > 0, nb, 1.0)[:, None]
    nan = torch.full_like(na, float("nan"))
    cosine = torch.where(defined, 0.5 * (unit_a - unit_b).square().sum(dim=1), nan)
    relative = torch.where(defined, (b - a).norm(dim=1) / torch.where(na > 0, na, 1.0), nan)
    return cosine, relative


class _Given:
    """Stands in for the model on a batch whose outputs are already known."""

    def __init__(self, outputs: torch.Tensor):
        self.outputs = outputs

    def __call__(self, views: torch.Tensor) -> torch.Tensor:
        return self.outputs


def _refused(reason: str, started: float, eager_seconds: float = 0.0) -> dict:
    return {
        "ok": False,
        "reason": reason[:500],
        "eager_seconds": round(eager_seconds, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _to_pinned(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """A pinned host copy of a device tensor, copied without waiting (None stays None)."""
    if tensor is None:
        return None
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    return host
