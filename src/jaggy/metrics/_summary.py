"""predictions.parquet -> summary: per protocol, every metric's mean over images and CI."""

from __future__ import annotations

import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ._bootstrap import bootstrap_mean_ci
from ._functional import list_metrics, per_image_metrics
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
]


def read_sequences(predictions: str | Path) -> dict[str, PredictionSequences]:
    """Read predictions.parquet (row group by row group) into sequences per protocol key."""
    columns: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    order: list[str] = []
    file = pq.ParquetFile(predictions)
    for group in range(file.num_row_groups):
        table = file.read_row_group(group, columns=SUMMARY_COLUMNS)
        protocols = np.asarray(table.column("protocol").to_pylist())
        data = {name: table.column(name) for name in SUMMARY_COLUMNS if name != "protocol"}
        for key in dict.fromkeys(protocols.tolist()):
            if key not in columns:
                order.append(key)
            mask = protocols == key
            target = columns[key]
            for name, column in data.items():
                if name in ("top5_ids", "top5_probs"):
                    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
                    target[name].append(flat.reshape(-1, 5)[mask])
                elif name == "p_prev_top1":
                    target[name].append(
                        column.to_numpy(zero_copy_only=False).astype(np.float64)[mask]
                    )
                else:
                    target[name].append(column.to_numpy(zero_copy_only=False)[mask])
    sequences = {}
    for key in order:
        merged = {name: np.concatenate(parts) for name, parts in columns[key].items()}
        sequences[key] = PredictionSequences.from_columns(merged)
    return sequences


def summarize_sequences(
    sequences: dict[str, PredictionSequences],
    *,
    seed: int = 0,
    consistency_k: int = 10,
    n_resamples: int = 1000,
) -> dict:
    """Summary dict: {protocol key: {metric: {value, ci95}, n_images, n_pairs}}."""
    out = {}
    for key, seq in sequences.items():
        per_image = per_image_metrics(seq, seed=seed, consistency_k=consistency_k, protocol=key)
        entry: dict = {}
        for name in list_metrics():
            boot_seed = [seed, zlib.crc32(f"{key}/{name}".encode())]
            value, ci = bootstrap_mean_ci(per_image[name], n_resamples=n_resamples, seed=boot_seed)
            entry[name] = {"value": value, "ci95": ci}
        entry["n_images"] = int(seq.n_images)
        entry["n_pairs"] = int(np.maximum(seq.n_views - 1, 0).sum())
        out[key] = entry
    return out


def summarize_predictions(
    predictions: str | Path, *, seed: int = 0, consistency_k: int = 10, n_resamples: int = 1000
) -> dict:
    """Every metric of every protocol in a predictions.parquet file."""
    return summarize_sequences(
        read_sequences(predictions), seed=seed, consistency_k=consistency_k, n_resamples=n_resamples
    )
