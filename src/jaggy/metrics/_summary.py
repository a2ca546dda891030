"""predictions.parquet -> summary: per protocol, every metric's mean over images and CI.

Streaming: the file is read row group by row group; the rows of each completed image are
turned into per-image metric values at once, so memory holds one row group plus a few floats
per image, whatever the number of views. Rows of one image are contiguous in the file (the
engine writes chunks of whole images in order), which is what makes this possible.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._bootstrap import bootstrap_mean_ci
from ._functional import list_metrics, paired_as, per_image_metrics
from ._sequences import PredictionSequences

SUMMARY_COLUMNS = [
    "image_index",
    "protocol",
    "view",
    "label",
    "ref_class",
    "top5_ids",
    "top5_probs",
    "p_label",
    "p_prev_top1",
    "finite",  # absent from files written before it existed
]


class _ProtocolValues:
    """Per-image metric values of one protocol, gathered as images complete."""

    def __init__(self) -> None:
        self.values: dict[str, list[np.ndarray]] = {name: [] for name in list_metrics()}
        self.n_images = 0
        self.n_pairs = 0
        self.n_nonfinite_views = 0

    def add(
        self,
        seq: PredictionSequences,
        *,
        seed: int,
        consistency_k: int,
        key: str,
        difficulty: int = 1,
        pmk: int = 10,
    ) -> None:
        seq = paired_as(seq, key)
        metrics = per_image_metrics(
            seq,
            seed=seed,
            consistency_k=consistency_k,
            protocol=key,
            difficulty=difficulty,
            pmk=pmk,
        )
        for name, values in metrics.items():
            self.values[name].append(values)
        self.n_images += seq.n_images
        if seq.finite is not None:
            self.n_nonfinite_views += int((~seq.finite).sum())
        self.n_pairs += seq.n_pairs

    def per_image(self, name: str) -> np.ndarray:
        parts = self.values[name]
        return np.concatenate(parts) if parts else np.zeros(0)


def _columns(table: pa.Table) -> dict[str, np.ndarray]:
    """Arrow columns -> numpy arrays (top-5 lists as [N, 5]; null p_prev_top1 as NaN)."""
    out: dict[str, np.ndarray] = {}
    for name in SUMMARY_COLUMNS:
        if name not in table.column_names:
            continue
        column = table.column(name).combine_chunks()
        if name in ("top5_ids", "top5_probs"):
            out[name] = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, 5)
        elif name == "p_prev_top1":
            out[name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
        elif name == "protocol":
            out[name] = np.asarray(column.to_pylist(), dtype=object)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out


def _take(columns: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[mask] for name, values in columns.items()}


def _concat(a: dict[str, np.ndarray] | None, b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if a is None:
        return b
    return {name: np.concatenate([a[name], b[name]]) for name in b}


def per_image_values(
    predictions: str | Path,
    *,
    seed: int = 0,
    consistency_k: int = 10,
    difficulty: int = 1,
    pmk: int = 10,
) -> dict[str, _ProtocolValues]:
    """Every metric per image, per protocol key (in order of first appearance)."""
    out: dict[str, _ProtocolValues] = {}
    carry: dict[str, np.ndarray] | None = None

    def consume(rows: dict[str, np.ndarray]) -> None:
        for key in dict.fromkeys(rows["protocol"].tolist()):
            subset = _take(rows, rows["protocol"] == key)
            seq = PredictionSequences.from_columns(subset)
            out.setdefault(key, _ProtocolValues()).add(
                seq,
                seed=seed,
                consistency_k=consistency_k,
                key=key,
                difficulty=difficulty,
                pmk=pmk,
            )

    file = pq.ParquetFile(predictions)
    present = [c for c in SUMMARY_COLUMNS if c in file.schema_arrow.names]
    for group in range(file.num_row_groups):
        rows = _concat(carry, _columns(file.read_row_group(group, columns=present)))
        if len(rows["image_index"]) == 0:
            carry = None
            continue
        # The last image may continue in the next row group: keep it for later.
        open_image = rows["image_index"][-1]
        is_open = rows["image_index"] == open_image
        consume(_take(rows, ~is_open))
        carry = _take(rows, is_open)
    if carry is not None and len(carry["image_index"]):
        consume(carry)
    return out


def summarize_values(
    values: dict[str, _ProtocolValues], *, seed: int = 0, n_resamples: int = 1000
) -> dict:
    """{protocol key: {metric: {value, ci95}, n_images, n_pairs}} from per-image values."""
    out = {}
    for key, protocol in values.items():
        entry: dict = {}
        for name in list_metrics():
            boot_seed = [seed, zlib.crc32(f"{key}/{name}".encode())]
            value, ci = bootstrap_mean_ci(
                protocol.per_image(name), n_resamples=n_resamples, seed=boot_seed
            )
            if protocol.n_nonfinite_views:  # undefined, never "stable": a gate must fail
                value, ci = None, [None, None]
            entry[name] = {"value": value, "ci95": ci}
        entry["n_images"] = protocol.n_images
        entry["n_nonfinite_views"] = protocol.n_nonfinite_views
        entry["n_pairs"] = protocol.n_pairs
        out[key] = entry
    return out


def summarize_sequences(
    sequences: dict[str, PredictionSequences],
    *,
    seed: int = 0,
    consistency_k: int = 10,
    n_resamples: int = 1000,
    difficulty: int = 1,
    pmk: int = 10,
) -> dict:
    """The summary of sequences already in memory (see `summarize_predictions`)."""
    values = {}
    for key, seq in sequences.items():
        values[key] = _ProtocolValues()
        values[key].add(
            seq, seed=seed, consistency_k=consistency_k, key=key, difficulty=difficulty, pmk=pmk
        )
    return summarize_values(values, seed=seed, n_resamples=n_resamples)


def summarize_predictions(
    predictions: str | Path,
    *,
    seed: int = 0,
    consistency_k: int = 10,
    n_resamples: int = 1000,
    difficulty: int = 1,
    pmk: int = 10,
) -> dict:
    """Every metric of every protocol in a predictions.parquet file, streaming.

    Returns {protocol key: {metric: {"value": mean over images, "ci95": [lo, hi]},
    "n_images": G, "n_pairs": consecutive view pairs}}; a metric undefined for every image
    (e.g. accuracy without labels) has value None.
    """
    values = per_image_values(
        predictions, seed=seed, consistency_k=consistency_k, difficulty=difficulty, pmk=pmk
    )
    return summarize_values(values, seed=seed, n_resamples=n_resamples)


def read_sequences(predictions: str | Path) -> dict[str, PredictionSequences]:
    """The whole file as sequences per protocol key, in memory (for small files and tests)."""
    names = pq.read_schema(predictions).names
    table = pq.read_table(predictions, columns=[c for c in SUMMARY_COLUMNS if c in names])
    rows = _columns(table)
    return {
        key: PredictionSequences.from_columns(_take(rows, rows["protocol"] == key))
        for key in dict.fromkeys(rows["protocol"].tolist())
    }
