"""Batches of views -> prediction rows (top-5, reference and previous-top-1 probabilities).

The per-view bookkeeping is done per *segment* (consecutive views of one image's protocol
sequence) with numpy, and everything that depends on the model's answers (the reference class
c*, the previous view's top-1 and their probabilities) is computed on the device. So a batch
costs the host a handful of small array operations whatever its size, and on a GPU the rows of
one batch are collected while the next batch runs (one batch in flight).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from torch import nn

AUTOCAST_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
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
class _Pending:
    """A batch whose answers are (being) copied to the host."""

    segments: list[Segment]
    rows: RowColumns
    ints: torch.Tensor  # [B, 7]: top-5 ids, reference class, finite (1 when every logit is)
    floats: torch.Tensor  # [B, 7]: top-5 probabilities, p(reference), p(previous top-1)
    has_prev: np.ndarray
    ready: torch.cuda.Event | None


class Forward:
    """Runs the model on view batches and turns its outputs into rows.

    Keeps, for the sequence in progress at the end of a batch, its reference class c* (label,
    else view 0's top-1) and the last view's top-1 (on the device), so rows carry `p_ref` and
    `p_prev_top1` exactly, from the full probability vector. A batch that fails (e.g. out of
    memory) changes neither that state nor any rows, so it can be rerun in smaller pieces.
    """

    def __init__(
        self,
        module: nn.Module,
        device: torch.device,
        dtype: str = "float32",
        memory_format: str = "contiguous",
        compile: bool = False,
    ):
        self.device = device
        self.memory_format = memory_format
        self.torch_memory_format = TORCH_MEMORY_FORMATS[memory_format]
        self.module = set_memory_format(module, memory_format)
        if compile:
            self.module = torch.compile(self.module)
        self.autocast_dtype = AUTOCAST_DTYPES.get(dtype)
        self.in_flight = 1 if device.type == "cuda" else 0
        self._pending: list[_Pending] = []
        self._carry_key: tuple[int, str, int] | None = None  # (image, protocol, next view)
        self._carry_top1 = torch.zeros(1, dtype=torch.long, device=device)
        self._carry_ref = torch.zeros(1, dtype=torch.long, device=device)

    def logits(self, views: torch.Tensor) -> torch.Tensor:
        views = views.contiguous(memory_format=self.torch_memory_format)
        context = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), context:
            return self.module(views)

    def run(self, views: torch.Tensor, segments: list[Segment], rows: RowColumns) -> None:
        """Forward `views` [B, 3, R, R] (the views of `segments`, in order); their rows go to
        `rows`, at the latest when `drain` is called."""
        self._pending.append(self._submit(views, segments, rows))
        while len(self._pending) > self.in_flight:
            self._finish(self._pending.pop(0))

    def drain(self) -> None:
        """Collect the rows of every batch still in flight."""
        while self._pending:
            self._finish(self._pending.pop(0))

    def _plan(self, segments: list[Segment]):
        """Host-side index plan of a batch: where each view's previous top-1 and reference
        class come from, in ext = [carried value, top-1 of batch position 0, 1, ...]."""
        n = sum(s.count for s in segments)
        prev_pos = np.zeros(n, dtype=np.int64)  # ext position of the previous view's top-1
        ref_pos = np.zeros(n, dtype=np.int64)  # ext position of view 0's top-1
        labels = np.full(n, -1, dtype=np.int64)
        has_prev = np.ones(n, dtype=bool)
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
            carry = (s.image_index, s.plan.key, s.start + s.count)
            i = j
        return prev_pos, ref_pos, labels, has_prev, carry

    def _submit(self, views: torch.Tensor, segments: list[Segment], rows: RowColumns) -> _Pending:
        prev_pos, ref_pos, labels, has_prev, carry = self._plan(segments)
        logits = self.logits(views)
        device = self.device
        with torch.inference_mode():
            probs = logits.float().softmax(dim=-1)
            top5_probs, top5_ids = probs.topk(5, dim=-1)
            top1 = top5_ids[:, 0]
            ext_top1 = torch.cat([self._carry_top1, top1])
            ext_ref = torch.cat([self._carry_ref, top1])
            label_t = torch.from_numpy(labels).to(device, non_blocking=True)
            ref = torch.where(label_t >= 0, label_t, ext_ref[torch.from_numpy(ref_pos).to(device)])
            prev_top1 = ext_top1[torch.from_numpy(prev_pos).to(device)]
            p_ref = probs.gather(1, ref[:, None])
            p_prev = probs.gather(1, prev_top1[:, None])
            finite = torch.isfinite(logits).all(dim=-1)  # NaN/Inf: the view's answer is void
            ints = torch.cat([top5_ids, ref[:, None], finite[:, None]], dim=1).int()
            floats = torch.cat([top5_probs, p_ref, p_prev], dim=1)
            ready = None
            if device.type == "cuda":
                host_ints = torch.empty(ints.shape, dtype=ints.dtype, pin_memory=True)
                host_floats = torch.empty(floats.shape, dtype=floats.dtype, pin_memory=True)
                host_ints.copy_(ints, non_blocking=True)
                host_floats.copy_(floats, non_blocking=True)
                ints, floats = host_ints, host_floats
                ready = torch.cuda.Event()
                ready.record()
            elif device.type != "cpu":
                ints, floats = ints.cpu(), floats.cpu()
        # Everything that can fail is done: carry the sequence state to the next batch.
        self._carry_key = carry
        self._carry_top1 = top1[-1:]
        self._carry_ref = ref[-1:]
        return _Pending(segments, rows, ints, floats, has_prev, ready)

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
                "has_prev": pending.has_prev,
            }
        )
