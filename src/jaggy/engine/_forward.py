"""One batch of views -> prediction rows (top-5, reference and previous-top-1 probabilities)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

AUTOCAST_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
TORCH_MEMORY_FORMATS = {
    "contiguous": torch.contiguous_format,
    "channels_last": torch.channels_last,
}


@dataclass
class ViewMeta:
    """Identity of one view in the batch; consecutive views of one sequence share `sequence`."""

    image_index: int
    image_id: str
    protocol: str
    protocol_name: str
    view: int
    dx: float
    dy: float
    size: int
    label: int


class RowColumns:
    """Column-wise accumulator of prediction rows (the layout of predictions.parquet)."""

    NAMES = (
        "image_index",
        "image_id",
        "protocol",
        "protocol_name",
        "view",
        "dx",
        "dy",
        "size",
        "label",
        "ref_class",
        "top1",
        "top5_ids",
        "top5_probs",
        "p_label",
        "p_prev_top1",
    )

    def __init__(self):
        self.columns: dict[str, list] = {name: [] for name in self.NAMES}

    def __len__(self) -> int:
        return len(self.columns["view"])


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


class Forward:
    """Runs the model on view batches and turns outputs into rows.

    Keeps, for the sequence in progress, its reference class c* (label, else view 0's top-1)
    and the previous view's top-1, so rows carry `p_label` and `p_prev_top1` exactly (computed
    from the full probability vector on the device). A batch that fails (e.g. out of memory)
    leaves that state and the rows untouched, so it can be rerun in smaller pieces.
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
        self._sequence: tuple[int, str] | None = None
        self._ref = -1
        self._prev_top1 = -1

    def logits(self, views: torch.Tensor) -> torch.Tensor:
        views = views.contiguous(memory_format=self.torch_memory_format)
        context = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), context:
            return self.module(views)

    def run(self, views: torch.Tensor, metas: list[ViewMeta], rows: RowColumns) -> None:
        """Forward `views` [B, 3, R, R] and append one row per view to `rows`."""
        logits = self.logits(views)
        with torch.inference_mode():
            probs = logits.float().softmax(dim=-1)
            top5_probs, top5_ids = probs.topk(5, dim=-1)
            top1 = top5_ids[:, 0].tolist()
            sequence, ref, prev_top1 = self._sequence, self._ref, self._prev_top1
            ref_idx, prev_idx, has_prev = [], [], []
            for i, meta in enumerate(metas):
                key = (meta.image_index, meta.protocol)
                if key != sequence or meta.view == 0:
                    sequence = key
                    ref = meta.label if meta.label >= 0 else top1[i]
                    prev_top1 = -1
                ref_idx.append(ref)
                has_prev.append(prev_top1 >= 0)
                prev_idx.append(max(prev_top1, 0))
                prev_top1 = top1[i]
            arange = torch.arange(len(metas), device=probs.device)
            p_ref = probs[arange, torch.tensor(ref_idx, device=probs.device)]
            p_prev = probs[arange, torch.tensor(prev_idx, device=probs.device)]
            packed = torch.stack([p_ref, p_prev]).cpu()
            top5_ids = top5_ids.int().cpu().tolist()
            top5_probs = top5_probs.cpu().tolist()
        # Everything that can fail is done: commit the sequence state and the rows.
        self._sequence, self._ref, self._prev_top1 = sequence, ref, prev_top1
        p_ref_list, p_prev_list = packed[0].tolist(), packed[1].tolist()
        c = rows.columns
        for i, meta in enumerate(metas):
            c["image_index"].append(meta.image_index)
            c["image_id"].append(meta.image_id)
            c["protocol"].append(meta.protocol)
            c["protocol_name"].append(meta.protocol_name)
            c["view"].append(meta.view)
            c["dx"].append(meta.dx)
            c["dy"].append(meta.dy)
            c["size"].append(meta.size)
            c["label"].append(meta.label)
            c["ref_class"].append(ref_idx[i])
            c["top1"].append(top1[i])
            c["top5_ids"].append(top5_ids[i])
            c["top5_probs"].append(top5_probs[i])
            c["p_label"].append(p_ref_list[i])
            c["p_prev_top1"].append(p_prev_list[i] if has_prev[i] else None)
