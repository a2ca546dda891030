"""What the report reads from an audit folder, only through `jaggy.results`; it computes no
metric.

- Per image and protocol key: metrics.parquet (`read_metrics`). The wall is sorted by its
  `jaggedness`, the images whose curves are drawn are those with the highest `p_top1_change`
  + `jaggedness`, and every number shown per image is a value of that table.
- Per view: one streaming pass over the predictions (`iter_sequences`) gives each protocol's
  views and their geometry (the curves' x axis), feeds `jaggy.metrics`' per-view averages
  (mean P(c*) and "top-1 is c*" at each view: the mean curves), and keeps the whole sequences
  of the few images a figure shows. Memory grows with views x protocols and the images shown, never with
  rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..metrics._by_view import ViewAverages
from ..results import iter_sequences, read_metrics
from ..results._files import PREDICTIONS_FILE

KEY_COLUMNS = (
    "image_index",
    "image_id",
    "protocol",
    "protocol_name",
    "label",
    "ref_class",
    "n_views",
    "n_pairs",
)


class RunMetrics:
    """metrics.parquet of one run: per (protocol key, image) metric values."""

    def __init__(self, table: pa.Table):
        self.metric_names = [
            name for name in table.column_names if name not in KEY_COLUMNS
        ]  # one float column per registered metric, in registration order
        columns = {
            name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names
        }
        protocols = np.asarray(columns["protocol"], dtype=object)
        self._rows: dict[str, dict[int, int]] = {}
        for row, (key, image) in enumerate(
            zip(protocols.tolist(), columns["image_index"].tolist(), strict=True)
        ):
            self._rows.setdefault(key, {})[int(image)] = row
        self._columns = columns

    def keys(self) -> list[str]:
        """Protocol keys, in the table's order."""
        return list(self._rows)

    def images(self, key: str) -> np.ndarray:
        """Image indices measured under `key` (ascending)."""
        return np.asarray(sorted(self._rows.get(key, {})), dtype=np.int64)

    def value(self, key: str, image: int, column: str) -> float:
        """One cell (a metric or n_views / n_pairs); NaN when absent or undefined."""
        row = self._rows.get(key, {}).get(int(image))
        if row is None or column not in self._columns:
            return float("nan")
        return float(self._columns[column][row])

    def column(self, key: str, column: str, images: np.ndarray) -> np.ndarray:
        return np.asarray([self.value(key, i, column) for i in images], dtype=np.float64)

    def wall_order(self, key: str) -> np.ndarray:
        """Images of `key` by jaggedness, most jagged first (undefined last), then by
        P(top-1 change), then by image index."""
        images = self.images(key)
        jag = np.nan_to_num(self.column(key, "jaggedness", images), nan=-1.0)
        changes = np.nan_to_num(self.column(key, "p_top1_change", images), nan=-1.0)
        return images[np.lexsort((images, -changes, -jag))]

    def most_unstable(self, limit: int) -> list[int]:
        """Up to `limit` images with the highest mean over protocol keys of P(top-1 change) +
        jaggedness: the images whose curves are worth looking at. Ties: lower index first."""
        if limit <= 0:
            return []
        total: dict[int, float] = {}
        count: dict[int, int] = {}
        for key in self.keys():
            if key.startswith("worst@"):  # worst-case sets have no pair metrics
                continue
            for image in self.images(key):
                score = sum(
                    np.nan_to_num(self.value(key, image, m), nan=0.0)
                    for m in ("p_top1_change", "jaggedness")
                )
                total[int(image)] = total.get(int(image), 0.0) + score
                count[int(image)] = count.get(int(image), 0) + 1
        ranked = sorted(total, key=lambda i: (-total[i] / count[i], i))
        return ranked[:limit]


def spread_pick(ordered: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` items of an ordered array, evenly spaced over it (first and last kept),
    so a capped wall still spans the whole ranking."""
    n = len(ordered)
    if n <= limit:
        return ordered
    positions = np.unique(np.round(np.linspace(0, n - 1, limit)).astype(np.int64))
    return ordered[positions]


@dataclass
class ProtocolViews:
    """The views of one protocol key over all images: their geometry and the per-view
    averages of `jaggy.metrics` (arrays in the order of `views`)."""

    key: str
    params: dict[int, tuple[float, float, int]] = field(default_factory=dict)  # view: dx, dy, S
    averages: ViewAverages = field(default_factory=ViewAverages)

    @property
    def views(self) -> list[int]:
        return sorted(self.params)

    def add(self, view, p_ref, top1, ref_class, dx, dy, size) -> None:
        """Add the rows of some sequences (numpy arrays, one entry per row)."""
        self.averages.update(view, p_ref, top1, ref_class)
        for v in np.unique(view).tolist():
            if v not in self.params:
                j = int(np.argmax(view == v))
                self.params[v] = (float(dx[j]), float(dy[j]), int(size[j]))

    def mean_p_by_view(self) -> np.ndarray:
        """Mean P(c*) over the images at each view (finite values only; NaN when none)."""
        return self.averages.mean_p_ref()

    def correct_by_view(self) -> np.ndarray:
        """Fraction of the images whose top-1 is c* at each view."""
        return self.averages.top1_rate()

    def x_values(self) -> tuple[np.ndarray, str]:
        """The x axis of this protocol's curves and its label: the embedded size when it
        changes along the sequence (`scale`), else the shift in px along a straight path
        (dx, or dy for a vertical path; fractions of a pixel for `fourier`), else the view
        index (e.g. a serpentine grid)."""
        views = self.views
        dx, dy, sizes = (np.asarray([self.params[v][i] for v in views]) for i in range(3))
        if len(set(sizes.tolist())) > 1:
            return sizes.astype(np.float64), "embedded size (px)"
        along = np.abs(dx) if np.any(dx != 0) else np.abs(dy)  # crop moves content left
        if len(views) > 1 and np.all(np.diff(along) > 0):
            return along.astype(np.float64), "shift (px along the path)"
        return np.asarray(views, dtype=np.float64), "view k (1 step per view)"


@dataclass
class Sequence:
    """One image's views in one protocol key (arrays in view order), as recorded."""

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
        """Whether each view's top-1 is c* (its frame and point colour)."""
        return self.top1 == self.ref_class


def read_views(
    run_dir: str | Path, wanted: dict[str, set[int]]
) -> tuple[dict[str, ProtocolViews], dict[tuple[str, int], Sequence]]:
    """One streaming pass over a run's predictions: every protocol key's views, and the
    sequences of the `wanted` images ({protocol key: image indices}) keyed by (key, index)."""
    views: dict[str, ProtocolViews] = {}
    kept: dict[tuple[str, int], Sequence] = {}
    path = Path(run_dir) / PREDICTIONS_FILE
    for seq in iter_sequences(path, optional=["image_id", "dx", "dy", "size"]):
        entry = views.setdefault(seq.protocol, ProtocolViews(seq.protocol))
        top1 = seq.top5_ids[:, 0]
        zeros = np.zeros(len(seq.view))
        entry.add(
            seq.view.astype(np.int64),
            seq.p_ref.astype(np.float64),
            top1,
            seq.ref_class,
            seq.dx if seq.dx is not None else zeros,
            seq.dy if seq.dy is not None else zeros,
            seq.size if seq.size is not None else zeros,
        )
        chosen = wanted.get(seq.protocol, set())
        if not chosen:
            continue
        for start, end in zip(seq.starts.tolist(), seq.ends.tolist(), strict=True):
            index = int(seq.image_index[start])
            if index not in chosen:
                continue
            ref = int(seq.ref_class[start])
            kept[(seq.protocol, index)] = Sequence(
                image_index=index,
                image_id=str(seq.image_id[start]),
                protocol=seq.protocol,
                view=seq.view[start:end].astype(np.int64),
                top1=top1[start:end].astype(np.int64),
                top1_prob=seq.top5_probs[start:end, 0].astype(np.float64),
                in_top5=(seq.top5_ids[start:end] == ref).any(axis=1),
                p_ref=seq.p_ref[start:end].astype(np.float64),
                ref_class=ref,
                label=int(seq.label[start]),
            )
    return views, kept


def read_run_metrics(run_dir: str | Path) -> RunMetrics:
    """metrics.parquet of an audit folder (a DataError names what is wrong when it is missing
    or from another jaggy version)."""
    return RunMetrics(read_metrics(run_dir))
