"""Prediction sequences -> the per-image metrics table -> the summary (bootstrap over it).

Streaming: predictions.parquet is read by `jaggy.results.iter_sequences` one batch at a time,
each block of whole images turned into its rows of the metrics table at once; memory holds one
batch plus the table (a few floats per image and protocol key), whatever the number of views.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from ..results import PredictionSequences, ProtocolSummary, iter_sequences
from ..results._metrics_table import metrics_block, metrics_schema
from ..results._records import Estimate
from ._bootstrap import bootstrap_mean_ci
from ._functional import list_metrics, paired_as, per_image_metrics


def per_image_table(seq: PredictionSequences, **context) -> pa.Table:
    """The metrics-table rows of `seq` (read with image_id): every registered metric per
    image, beside the image's key columns and its view and pair counts. `context`: the
    options of `per_image_metrics` (seed, consistency_k, difficulty, pmk)."""
    seq = paired_as(seq, seq.protocol)  # a paired protocol counts its own pairs
    values = per_image_metrics(seq, protocol=seq.protocol, **context)
    return metrics_block(seq, values)


def metrics_blocks(predictions: str | Path, **context) -> Iterator[pa.Table]:
    """The metrics table of a predictions file, block by block (streaming)."""
    # the geometry columns: the worst-case metrics read the first failing transformation
    for seq in iter_sequences(predictions, optional=["image_id", "dx", "dy", "angle"]):
        yield per_image_table(seq, **context)


def metrics_table(predictions: str | Path, **context) -> pa.Table:
    """The whole metrics table of a predictions file, in memory (options as
    `per_image_metrics`)."""
    blocks = list(metrics_blocks(predictions, **context))
    if not blocks:
        return metrics_schema(list_metrics()).empty_table()
    return pa.concat_tables(blocks)


def summarize_metrics(
    table: pa.Table, *, seed: int = 0, n_resamples: int = 1000
) -> dict[str, ProtocolSummary]:
    """Per protocol key (in order of first appearance): every registered metric's mean over
    the images of the table with its bootstrap 95% CI (seeded by seed, key and metric), the
    number of images and of pairs. A metric undefined for every image (NaN, e.g. accuracy
    without labels) has value None, and so has every metric of a key with a view whose
    outputs were NaN or Inf (undefined, never "stable": a gate must fail), except on
    worst-case sets, where such a view fails as a wrong one does (the image is not robust)."""
    keys = table.column("protocol").to_numpy(zero_copy_only=False)
    n_pairs = table.column("n_pairs").to_numpy()
    nonfinite = table.column("n_nonfinite_views").to_numpy()
    values = {name: table.column(name).to_numpy() for name in list_metrics()}
    out: dict[str, ProtocolSummary] = {}
    for key in dict.fromkeys(keys.tolist()):
        rows = keys == key
        n_nonfinite = int(nonfinite[rows].sum())
        worst_case = _is_worst_case_key(key)
        estimates = {}
        for name in list_metrics():
            boot_seed = [seed, zlib.crc32(f"{key}/{name}".encode())]
            value, ci = bootstrap_mean_ci(
                values[name][rows], n_resamples=n_resamples, seed=boot_seed
            )
            if n_nonfinite and not worst_case:  # a worst-case set's NaN/Inf view fails
                value, ci = None, [None, None]
            estimates[name] = Estimate(value, tuple(ci))
        out[key] = ProtocolSummary(
            estimates, int(rows.sum()), int(n_pairs[rows].sum()), n_nonfinite
        )
    return out


def summarize_predictions(
    predictions: str | Path, *, seed: int = 0, n_resamples: int = 1000, **context
) -> dict:
    """Every metric of every protocol key in a predictions file, recomputed from it alone, as
    in summary.json's "protocols": {key: {metric: {"value", "ci95"}, "n_images", "n_pairs"}}.
    `context`: the other options of `per_image_metrics` (consistency_k, difficulty, pmk)."""
    table = metrics_table(predictions, seed=seed, **context)
    summary = summarize_metrics(table, seed=seed, n_resamples=n_resamples)
    return {key: entry.to_dict() for key, entry in summary.items()}


def summarize_sequences(
    sequences: dict[str, PredictionSequences],
    *,
    seed: int = 0,
    n_resamples: int = 1000,
    **context,
) -> dict:
    """`summarize_predictions` of sequences already in memory ({key: sequences}; the key
    given here seeds `consistency`). Needs no image ids."""
    blocks = []
    for key, seq in sequences.items():
        seq = paired_as(seq, key)
        values = per_image_metrics(seq, seed=seed, protocol=key, **context)
        ids = seq.image_id if seq.image_id is not None else seq.image_index.astype(str)
        blocks.append(metrics_block(replace(seq, protocol=key, image_id=ids), values))
    table = pa.concat_tables(blocks) if blocks else metrics_schema(list_metrics()).empty_table()
    summary = summarize_metrics(table, seed=seed, n_resamples=n_resamples)
    return {key: entry.to_dict() for key, entry in summary.items()}


def _is_worst_case_key(key: str) -> bool:
    from ..errors import ArgumentError
    from ..protocols._registry import protocol_class

    try:
        return bool(protocol_class(str(key).split("@", 1)[0]).worst_case)
    except ArgumentError:
        return False
