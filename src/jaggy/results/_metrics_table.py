"""metrics.parquet: one row per (image, protocol key) with every registered metric.

Columns: `image_index` int64, `image_id` string, `protocol` string (the key, e.g. 'black@140'),
`protocol_name` string, `label` int64 (-1 unknown), `ref_class` int64 (c*), `n_views` int64,
`n_pairs` int64 (pairs of views: consecutive ones, or a paired protocol's own pairs),
`n_nonfinite_views` int64 (views with a NaN or Inf output; the image's metrics are then NaN),
then one float64 column per registered metric, in registration order (NaN where the metric is
undefined for that image). summary.json is the
bootstrap over this table; every later analysis reads it instead of recomputing a metric.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError
from ._atomic import RESUME_HINT, atomic_write
from ._files import METRICS_FILE, PREDICTIONS_FILE
from ._predictions import VERSION_KEY, check_version, versioned_metadata
from ._sequences import PredictionSequences

METRICS_KEY_COLUMNS = pa.schema(
    [
        ("image_index", pa.int64()),
        ("image_id", pa.string()),
        ("protocol", pa.string()),
        ("protocol_name", pa.string()),
        ("label", pa.int64()),
        ("ref_class", pa.int64()),
        ("n_views", pa.int64()),
        ("n_pairs", pa.int64()),
        ("n_nonfinite_views", pa.int64()),
    ]
)


def metric_columns(table: pa.Table) -> list[str]:
    """The metric columns of a metrics table (every column after the key columns)."""
    return [name for name in table.column_names if name not in METRICS_KEY_COLUMNS.names]


def metrics_schema(metric_names: Iterable[str]) -> pa.Schema:
    """The schema of a metrics table with these metric columns (float64 each)."""
    fields = [*METRICS_KEY_COLUMNS, *(pa.field(name, pa.float64()) for name in metric_names)]
    return pa.schema(fields, metadata=versioned_metadata())


def metrics_block(seq: PredictionSequences, values: dict[str, np.ndarray]) -> pa.Table:
    """The rows of one PredictionSequences (read with image_id): its per-image `values`
    ({metric: [G] floats}, in registry order) beside the image's key columns."""
    if seq.image_id is None:
        raise ValueError("metrics_block needs sequences read with optional=['image_id']")
    g = seq.n_images
    columns = {
        "image_index": seq.per_image(seq.image_index),
        "image_id": seq.per_image(seq.image_id).tolist(),
        "protocol": [seq.protocol] * g,
        "protocol_name": [seq.protocol_name] * g,
        "label": seq.per_image(seq.label),
        "ref_class": seq.per_image(seq.ref_class),
        "n_views": seq.n_views,
        "n_pairs": seq.pairs_per_image(),
        "n_nonfinite_views": seq.nonfinite_per_image(),
        **{name: np.asarray(v, dtype=np.float64) for name, v in values.items()},
    }
    return pa.table(columns, schema=metrics_schema(values))


# Rows per row group of metrics.parquet: one per block would make a run of a few images write
# and read dozens of row groups (their metadata costs more than their rows).
ROW_GROUP_ROWS = 65536


def write_metrics(
    path: str | Path, blocks: Iterable[pa.Table], metric_names: list[str], *, hint=RESUME_HINT
) -> int:
    """Write metrics blocks (streaming, atomically) to `path`; returns the number of rows."""
    schema = metrics_schema(metric_names)
    rows = 0

    def write(tmp: str) -> None:
        nonlocal rows
        with pq.ParquetWriter(tmp, schema) as writer:
            held: list[pa.Table] = []  # blocks come per protocol key and batch: a few rows each
            held_rows = 0
            for block in blocks:
                if block.num_rows:
                    held.append(block.cast(schema))
                    rows += block.num_rows
                    held_rows += block.num_rows
                    if held_rows >= ROW_GROUP_ROWS:
                        writer.write_table(pa.concat_tables(held))
                        held, held_rows = [], 0
            if held:
                writer.write_table(pa.concat_tables(held))

    atomic_write(path, write, hint=hint)
    return rows


def read_metrics(run_dir: str | Path) -> pa.Table:
    """The per-image metrics of an audit folder (its metrics.parquet) as a pyarrow Table.

    Raises DataError when the folder has none (not an audit, or written by an earlier jaggy,
    whose version the message names) or the file is unreadable.
    """
    run_dir = Path(run_dir)
    path = run_dir / METRICS_FILE
    if not path.is_file():
        predictions = run_dir / PREDICTIONS_FILE
        if predictions.is_file():
            check_version(predictions, pq.read_schema(predictions))
        raise DataError(
            f"'{run_dir}' holds no {METRICS_FILE}; give the --out folder of a finished jaggy audit"
        )
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"cannot read '{path}': {exc}; rerun the audit that wrote it") from exc
    if VERSION_KEY in (table.schema.metadata or {}):  # no earlier jaggy wrote this file
        check_version(path, table.schema, "metrics")
    return table
