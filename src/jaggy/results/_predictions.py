"""predictions.parquet: its schema, its version, and the one reader of its rows.

One row per (image, protocol key, view), long format. Rows of one image are contiguous and in
(protocol, view) order in a run's file (the engine writes chunks of whole images in order);
the streaming reader relies on that to yield whole sequences while holding one batch.

Schema versions: 1 (jaggy 0.1.0, unversioned) named the probability of c* `p_label`; 2 calls
it `p_ref` and records `jaggy.schema_version` in the file's metadata; 3 adds `angle`, the
view's rotation in degrees (worst-case sets; 0 for pure shifts), and the representation
change of each view against the view it is paired with (`feat_cos`, the cosine distance of
the pooled features, and `feat_rel_l2`, |f_b - f_a| / |f_a|; float32, null (NaN when read)
where the view has no earlier view to compare with or the run measured no features). A run
that measured no logits (`--measure features`) holds -1 in `top1`, `ref_class` and
`top5_ids` and NaN in the probabilities. A file of another version is refused with a message
naming both versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError
from ._sequences import OPTIONAL_COLUMNS, SEQUENCE_COLUMNS, PredictionSequences

SCHEMA_VERSION = 3
VERSION_KEY = b"jaggy.schema_version"
BATCH_ROWS = 65_536

PREDICTION_SCHEMA = pa.schema(
    [
        ("image_index", pa.int32()),
        ("image_id", pa.string()),
        ("protocol", pa.string()),
        ("protocol_name", pa.string()),
        ("view", pa.int32()),
        ("dx", pa.float64()),
        ("dy", pa.float64()),
        ("size", pa.int32()),
        ("angle", pa.float64()),  # degrees; 0 unless the view is rotated (worst-case sets)
        ("label", pa.int32()),
        ("ref_class", pa.int32()),
        ("top1", pa.int32()),
        ("top5_ids", pa.list_(pa.int32())),
        ("top5_probs", pa.list_(pa.float32())),
        ("p_ref", pa.float32()),
        ("p_prev_top1", pa.float32()),
        ("finite", pa.bool_()),  # every output of the view finite; else its metrics are undefined
        ("feat_cos", pa.float32()),  # cosine distance of the features to the paired view's
        ("feat_rel_l2", pa.float32()),  # |f - f_paired| / |f_paired|
    ],
    metadata={VERSION_KEY: str(SCHEMA_VERSION).encode()},
)


def versioned_metadata(extra: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
    """Schema metadata of a file jaggy writes: the schema version (+ `extra`)."""
    return {VERSION_KEY: str(SCHEMA_VERSION).encode(), **(extra or {})}


def file_version(schema: pa.Schema) -> int:
    """The schema version a parquet file declares; 1 for jaggy 0.1.0's unversioned files."""
    value = (schema.metadata or {}).get(VERSION_KEY)
    if value is None:
        return 1
    try:
        return int(value)
    except ValueError:
        return -1


def check_version(path: str | Path, schema: pa.Schema, what: str = "predictions") -> None:
    """Refuse a file of another schema version, naming both versions and what to do."""
    version = file_version(schema)
    if version == SCHEMA_VERSION:
        return
    if version == 1:
        detail = "column p_label" if "p_label" in schema.names else "unversioned"
        raise DataError(
            f"'{path}' was written by an earlier jaggy ({what} schema 1, {detail}); this "
            f"jaggy reads schema {SCHEMA_VERSION} (column p_ref, metrics.parquet): rerun the "
            "audit into a new --out"
        )
    raise DataError(
        f"'{path}' has {what} schema {version}; this jaggy reads schema {SCHEMA_VERSION}: "
        "use the jaggy version that wrote it, or rerun the audit"
    )


def open_predictions(path: str | Path) -> pq.ParquetFile:
    """The predictions file, checked: it exists, is parquet, and has this schema version."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no predictions file '{path}'")
    try:
        file = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"cannot read '{path}': {exc}; rerun the audit that wrote it") from exc
    check_version(path, file.schema_arrow)
    return file


def iter_prediction_batches(
    path: str | Path, columns: Iterable[str] | None = None, batch_size: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Rows of a predictions file, batch by batch, in file order (memory: one batch)."""
    file = open_predictions(path)
    names = None if columns is None else list(dict.fromkeys(columns))
    yield from file.iter_batches(batch_size=batch_size, columns=names)


def iter_sequences(
    path: str | Path,
    *,
    optional: Iterable[str] = (),
    images: Iterable[int] | None = None,
    batch_size: int = BATCH_ROWS,
) -> Iterator[PredictionSequences]:
    """The one streaming reader: a predictions file as PredictionSequences, each holding whole
    images of one protocol key (never an image split across two). Keys of a block come in
    order of first appearance; images of a key in file order.

    Args:
        path: a predictions.parquet file.
        optional: columns of OPTIONAL_COLUMNS to read as well ('image_id', 'dx', ...).
        images: only these image indices (the rest is skipped while reading).
        batch_size: rows read at a time; memory holds one batch plus one open image.
    """
    extra = [c for c in optional if c in OPTIONAL_COLUMNS and c != "protocol_name"]
    columns = [*SEQUENCE_COLUMNS, "protocol", "protocol_name", *extra]
    wanted = None if images is None else np.asarray(sorted(set(images)), dtype=np.int64)
    carry: dict[str, np.ndarray] | None = None
    for batch in iter_prediction_batches(path, columns, batch_size):
        rows = _concat(carry, _numpy_columns(batch))
        if wanted is not None:
            rows = _take(rows, np.isin(rows["image_index"], wanted))
        if len(rows["image_index"]) == 0:
            carry = None
            continue
        # The last image may continue in the next batch: keep it for later.
        is_open = rows["image_index"] == rows["image_index"][-1]
        yield from _split(_take(rows, ~is_open), extra)
        carry = _take(rows, is_open)
    if carry is not None and len(carry["image_index"]):
        yield from _split(carry, extra)


def read_sequences(path: str | Path, **options) -> dict[str, PredictionSequences]:
    """The whole file as one PredictionSequences per protocol key, in memory (small files,
    tests, the few images a figure shows). Options as for `iter_sequences`."""
    parts: dict[str, list[PredictionSequences]] = {}
    for seq in iter_sequences(path, **options):
        parts.setdefault(seq.protocol, []).append(seq)
    return {key: concat_sequences(seqs) for key, seqs in parts.items()}


def concat_sequences(parts: list[PredictionSequences]) -> PredictionSequences:
    """Sequences of one protocol key (from consecutive blocks) as one."""
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(p.image_index) for p in parts[:-1]])

    def cat(name):
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else np.concatenate(values)

    return PredictionSequences(
        image_index=cat("image_index"),
        view=cat("view"),
        top5_ids=cat("top5_ids"),
        top5_probs=cat("top5_probs"),
        p_ref=cat("p_ref"),
        p_prev_top1=cat("p_prev_top1"),
        label=cat("label"),
        ref_class=cat("ref_class"),
        starts=np.concatenate([p.starts + o for p, o in zip(parts, offsets, strict=True)]),
        protocol=parts[0].protocol,
        protocol_name=parts[0].protocol_name,
        image_id=cat("image_id"),
        dx=cat("dx"),
        dy=cat("dy"),
        size=cat("size"),
        angle=cat("angle"),
        pairing=parts[0].pairing,
        finite=cat("finite"),
        feat_cos=cat("feat_cos"),
        feat_rel_l2=cat("feat_rel_l2"),
    )


def _split(rows: dict[str, np.ndarray], extra: list[str]) -> Iterator[PredictionSequences]:
    if not len(rows["image_index"]):
        return
    for key in dict.fromkeys(rows["protocol"].tolist()):
        subset = _take(rows, rows["protocol"] == key)
        columns = {name: subset[name] for name in (*SEQUENCE_COLUMNS, *extra)}
        yield PredictionSequences.from_columns(
            columns, protocol=key, protocol_name=str(subset["protocol_name"][0])
        )


def _numpy_columns(batch: pa.RecordBatch) -> dict[str, np.ndarray]:
    """Arrow columns -> numpy (top-5 lists as [N, 5]; null p_prev_top1 as NaN; strings as
    object arrays)."""
    out: dict[str, np.ndarray] = {}
    for name in batch.schema.names:
        column = batch.column(name)
        if name in ("top5_ids", "top5_probs"):
            out[name] = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, 5)
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            encoded = column.dictionary_encode()
            names = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
            out[name] = names[encoded.indices.to_numpy(zero_copy_only=False)]
        elif name in ("p_prev_top1", "feat_cos", "feat_rel_l2"):  # null -> NaN
            out[name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out


def _take(columns: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[mask] for name, values in columns.items()}


def _concat(a: dict[str, np.ndarray] | None, b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if a is None:
        return b
    return {name: np.concatenate([a[name], b[name]]) for name in b}
