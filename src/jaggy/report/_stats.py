"""What the report needs from predictions.parquet, read in two streaming passes.

Pass 1 (`scan_predictions`) reads a few columns batch by batch and keeps, per protocol, small
per-image counters (views, views with top-1 == c*, pairs, jagged pairs, top-1 changes) and
per-view means. Pass 2 (`read_details`) reads the full view sequences of the few images a
figure shows. Memory grows with images x protocols (a few integers each), never with rows.

Conventions match jaggy.metrics: c* (`ref_class`) belongs to a protocol sequence; pairs are
consecutive views (k, k+1) of one image; a pair is *jagged* when "c* in the top-5" changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..results import iter_prediction_batches

BATCH_ROWS = 65_536
_PASS1 = ["image_index", "protocol", "view", "ref_class", "top5_ids", "p_ref", "dx", "dy", "size"]
_PASS2 = ["image_index", "image_id", "protocol", "view", "label", "ref_class", "top5_ids"]
_PASS2 += ["top5_probs", "p_ref"]

_COUNTERS = ("views", "correct", "pairs", "jagged", "changes")


def _top5_matrix(
    column: pa.ChunkedArray | pa.Array, dtype: type = np.int64
) -> tuple[np.ndarray, np.ndarray]:
    """(first entries [N], entries padded with -1 [N, K]) of a list column (top-5 ids or
    probabilities, best first)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    offsets = column.offsets.to_numpy()
    flat = column.values.to_numpy(zero_copy_only=False).astype(dtype)
    lengths = np.diff(offsets)
    n = len(lengths)
    k = int(lengths.max()) if n else 0
    matrix = np.full((n, max(k, 1)), -1, dtype=dtype)
    if n and (lengths == k).all():
        matrix[:, :k] = flat[offsets[0] : offsets[0] + n * k].reshape(n, k)
    else:
        for i in range(n):
            row = flat[offsets[i] : offsets[i + 1]]
            matrix[i, : len(row)] = row
    return matrix[:, 0], matrix


@dataclass
class ProtocolStats:
    """Per-image counters and per-view sums of one protocol (arrays indexed by image_index)."""

    key: str
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    view_p_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    view_correct: np.ndarray = field(default_factory=lambda: np.zeros(0))
    view_count: np.ndarray = field(default_factory=lambda: np.zeros(0))
    view_params: dict[int, tuple[float, float, int]] = field(default_factory=dict)
    # The last row seen (image, top-1, c* in top-5), to pair views across batch boundaries.
    _tail: tuple[int, int, bool] | None = None

    def _grow_images(self, n: int) -> None:
        size = len(self.counts.get("views", ()))
        if n <= size:
            return
        new = max(n, 2 * size, 64)
        for name in _COUNTERS:
            grown = np.zeros(new, dtype=np.int64)
            if name in self.counts:
                grown[:size] = self.counts[name]
            self.counts[name] = grown

    def _grow_views(self, n: int) -> None:
        size = len(self.view_count)
        if n <= size:
            return
        for name in ("view_p_sum", "view_correct", "view_count"):
            grown = np.zeros(n, dtype=np.float64)
            grown[:size] = getattr(self, name)
            setattr(self, name, grown)

    def add(self, image, view, top1, in_top5, correct, p_ref, dx, dy, size) -> None:
        """Add rows (numpy arrays, already in (image, view) order)."""
        self._grow_images(int(image.max()) + 1)
        self._grow_views(int(view.max()) + 1)
        c = self.counts
        np.add.at(c["views"], image, 1)
        np.add.at(c["correct"], image, correct.astype(np.int64))
        prev_image = np.concatenate([[-1], image[:-1]])
        prev_top1 = np.concatenate([[-1], top1[:-1]])
        prev_in = np.concatenate([[False], in_top5[:-1]])
        if self._tail is not None:
            prev_image[0], prev_top1[0], prev_in[0] = self._tail
        paired = prev_image == image
        np.add.at(c["pairs"], image[paired], 1)
        np.add.at(c["jagged"], image[paired], (in_top5 != prev_in)[paired].astype(np.int64))
        np.add.at(c["changes"], image[paired], (top1 != prev_top1)[paired].astype(np.int64))
        self._tail = (int(image[-1]), int(top1[-1]), bool(in_top5[-1]))
        finite = np.isfinite(p_ref)
        np.add.at(self.view_p_sum, view[finite], p_ref[finite])
        np.add.at(self.view_count, view, 1.0)
        np.add.at(self.view_correct, view, correct.astype(np.float64))
        for v in np.unique(view):
            v = int(v)
            if v not in self.view_params:
                j = int(np.argmax(view == v))
                self.view_params[v] = (float(dx[j]), float(dy[j]), int(size[j]))

    def image_indices(self) -> np.ndarray:
        """Images with at least one view in this protocol."""
        return np.nonzero(self.counts.get("views", np.zeros(0)) > 0)[0]

    def rate(self, name: str) -> np.ndarray:
        """Per-image fraction: jagged / changes over pairs, correct over views (NaN if none)."""
        denominator = self.counts["views" if name == "correct" else "pairs"]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 0, self.counts[name] / np.maximum(denominator, 1), np.nan)

    def n_views(self) -> int:
        return len(self.view_count)

    def mean_p_by_view(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.view_count > 0, self.view_p_sum / self.view_count, np.nan)

    def correct_by_view(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.view_count > 0, self.view_correct / self.view_count, np.nan)

    def x_values(self) -> tuple[np.ndarray, str]:
        """The x axis of this protocol's curves and its label: the embedded size when it
        changes along the sequence (`scale`), else the shift in px along a straight path
        (dx, or dy for a vertical path; fractions of a pixel for `fourier`), else the view
        index (e.g. a serpentine grid)."""
        views = sorted(self.view_params)
        dx, dy, sizes = (np.asarray([self.view_params[v][i] for v in views]) for i in range(3))
        if len(set(sizes.tolist())) > 1:
            return sizes.astype(np.float64), "embedded size (px)"
        along = np.abs(dx) if np.any(dx != 0) else np.abs(dy)  # crop moves content left
        if len(views) > 1 and np.all(np.diff(along) > 0):
            return along.astype(np.float64), "shift (px along the path)"
        return np.asarray(views, dtype=np.float64), "view k (1 step per view)"

    def wall_order(self) -> np.ndarray:
        """Images sorted by jaggedness (most jagged first), then by top-1 changes, then by how
        often top-1 is c* (least first), then by index."""
        images = self.image_indices()
        jag = np.nan_to_num(self.rate("jagged")[images], nan=0.0)
        changes = np.nan_to_num(self.rate("changes")[images], nan=0.0)
        correct = np.nan_to_num(self.rate("correct")[images], nan=0.0)
        order = np.lexsort((images, correct, -changes, -jag))
        return images[order]


def scan_predictions(path: str | Path) -> dict[str, ProtocolStats]:
    """Pass 1 over predictions.parquet: per-protocol counters (see module docstring)."""
    stats: dict[str, ProtocolStats] = {}
    for batch in iter_prediction_batches(path, _PASS1, BATCH_ROWS):
        if batch.num_rows == 0:
            continue
        image = batch.column("image_index").to_numpy(zero_copy_only=False).astype(np.int64)
        view = batch.column("view").to_numpy(zero_copy_only=False).astype(np.int64)
        ref = batch.column("ref_class").to_numpy(zero_copy_only=False).astype(np.int64)
        top1, topk = _top5_matrix(batch.column("top5_ids"))
        in_top5 = (topk == ref[:, None]).any(axis=1)
        correct = top1 == ref
        p_ref = batch.column("p_ref").to_numpy(zero_copy_only=False).astype(np.float64)
        n = batch.num_rows
        zeros = np.zeros(n)
        dx = _column(batch, "dx", zeros)
        dy = _column(batch, "dy", zeros)
        size = _column(batch, "size", zeros).astype(np.int64)
        protocols = np.asarray(batch.column("protocol").to_pylist(), dtype=object)
        for key in dict.fromkeys(protocols.tolist()):
            rows = np.nonzero(protocols == key)[0]
            # Rows of one sequence are contiguous and in view order in a run's file; sorting
            # by (image, view) inside the batch keeps this true for any writer.
            rows = rows[np.lexsort((view[rows], image[rows]))]
            entry = stats.setdefault(key, ProtocolStats(key))
            entry.add(
                image[rows],
                view[rows],
                top1[rows],
                in_top5[rows],
                correct[rows],
                p_ref[rows],
                dx[rows],
                dy[rows],
                size[rows],
            )
    return stats


def _column(batch: pa.RecordBatch, name: str, default: np.ndarray) -> np.ndarray:
    if name not in batch.schema.names:
        return default
    return batch.column(name).to_numpy(zero_copy_only=False).astype(np.float64)


@dataclass
class Sequence:
    """One image's views in one protocol (arrays in view order)."""

    image_index: int
    image_id: str
    protocol: str
    view: np.ndarray
    top1: np.ndarray
    top1_prob: np.ndarray
    in_top5: np.ndarray
    p_ref: np.ndarray
    ref_class: int
    label: int

    @property
    def correct(self) -> np.ndarray:
        return self.top1 == self.ref_class


def read_details(path: str | Path, wanted: dict[str, set[int]]) -> dict[tuple[str, int], Sequence]:
    """Pass 2: the full sequences of the wanted images of each protocol ({protocol: image
    indices}), keyed by (protocol, image index)."""
    parts: dict[tuple[str, int], list[dict]] = {}
    images = set().union(*wanted.values()) if wanted else set()
    if not images:
        return {}
    union = np.asarray(sorted(images), dtype=np.int64)
    for batch in iter_prediction_batches(path, _PASS2, BATCH_ROWS):
        image = batch.column("image_index").to_numpy(zero_copy_only=False).astype(np.int64)
        keep = np.nonzero(np.isin(image, union))[0]
        if len(keep) == 0:
            continue
        batch = batch.take(pa.array(keep))
        image = image[keep]
        protocol = batch.column("protocol").to_pylist()
        ids = batch.column("image_id").to_pylist()
        view = batch.column("view").to_numpy(zero_copy_only=False).astype(np.int64)
        ref = batch.column("ref_class").to_numpy(zero_copy_only=False).astype(np.int64)
        label = batch.column("label").to_numpy(zero_copy_only=False).astype(np.int64)
        top1, topk = _top5_matrix(batch.column("top5_ids"))
        first_prob, _ = _top5_matrix(batch.column("top5_probs"), np.float64)
        p_ref = batch.column("p_ref").to_numpy(zero_copy_only=False).astype(np.float64)
        in_top5 = (topk == ref[:, None]).any(axis=1)
        for i in range(batch.num_rows):
            if int(image[i]) not in wanted.get(protocol[i], ()):
                continue
            parts.setdefault((protocol[i], int(image[i])), []).append(
                {
                    "id": ids[i],
                    "view": int(view[i]),
                    "top1": int(top1[i]),
                    "top1_prob": float(first_prob[i]),
                    "in_top5": bool(in_top5[i]),
                    "p_ref": float(p_ref[i]),
                    "ref": int(ref[i]),
                    "label": int(label[i]),
                }
            )
    out = {}
    for (key, index), rows in parts.items():
        rows.sort(key=lambda r: r["view"])
        out[(key, index)] = Sequence(
            image_index=index,
            image_id=rows[0]["id"],
            protocol=key,
            view=np.asarray([r["view"] for r in rows]),
            top1=np.asarray([r["top1"] for r in rows]),
            top1_prob=np.asarray([r["top1_prob"] for r in rows]),
            in_top5=np.asarray([r["in_top5"] for r in rows]),
            p_ref=np.asarray([r["p_ref"] for r in rows]),
            ref_class=rows[0]["ref"],
            label=rows[0]["label"],
        )
    return out


def most_unstable(stats: dict[str, ProtocolStats], limit: int) -> list[int]:
    """Up to `limit` image indices with the highest mean (top-1 change rate + jaggedness) over
    protocols: the images whose curves are worth looking at. Ties: lower index first."""
    if not stats or limit <= 0:
        return []
    n = max(len(s.counts.get("views", ())) for s in stats.values())
    total = np.zeros(n)
    count = np.zeros(n)
    for s in stats.values():
        score = np.nan_to_num(s.rate("changes"), nan=0.0) + np.nan_to_num(s.rate("jagged"), nan=0.0)
        seen = s.counts["views"] > 0
        total[: len(score)] += np.where(seen, score, 0.0)
        count[: len(score)] += seen
    images = np.nonzero(count > 0)[0]
    mean = total[images] / count[images]
    order = np.lexsort((images, -mean))
    return [int(i) for i in images[order][:limit]]


def spread_pick(ordered: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` items of an ordered array, evenly spaced over it (first and last kept),
    so a capped wall still spans the whole ranking."""
    n = len(ordered)
    if n <= limit:
        return ordered
    positions = np.unique(np.round(np.linspace(0, n - 1, limit)).astype(np.int64))
    return ordered[positions]
