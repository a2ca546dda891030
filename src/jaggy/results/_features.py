"""features.npy: the feature vectors of an audit run that saved them (`--save-features`).

One float32 row [D] per row of predictions.parquet, in the same order (image, protocol key,
view), as a plain NumPy `.npy` file (`numpy.load(path, mmap_mode="r")` reads it without
loading it). The vectors are those the run compared (`--measure features[:LAYER]`: pooled, in
float32). While a run works, each chunk file keeps its rows' vectors in a `features` column
(a fixed-size list of D float32), so that they are committed, resumed and sharded with the
rows themselves; the merge writes them here and leaves them out of predictions.parquet.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError
from ._atomic import RESUME_HINT, atomic_write
from ._files import FEATURES_FILE, PREDICTIONS_FILE

FEATURES_COLUMN = "features"


def features_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """[N, D] float32 vectors as the chunk files' `features` column."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, int(vectors.shape[1]))


def column_vectors(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The `features` column of a chunk file as [N, D] float32."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    width = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


def write_features(path: str | Path, chunk_paths: Iterable[str | Path], *, hint=RESUME_HINT):
    """features.npy from the `features` column of chunk files, in the order given (streaming:
    one chunk in memory; written atomically)."""
    chunk_paths = list(chunk_paths)
    rows, width = 0, None
    for chunk in chunk_paths:
        meta = pq.ParquetFile(chunk).metadata
        rows += meta.num_rows
        if width is None:
            width = pq.read_schema(chunk).field(FEATURES_COLUMN).type.list_size

    def write(tmp: str) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(rows, width))
        position = 0
        for chunk in chunk_paths:
            vectors = column_vectors(pq.read_table(chunk, columns=[FEATURES_COLUMN])[0])
            out[position : position + len(vectors)] = vectors
            position += len(vectors)
        out.flush()
        del out

    atomic_write(path, write, hint=hint)


def read_features(run_dir: str | Path, *, mmap: bool = True) -> np.ndarray:
    """The saved feature vectors of an audit folder, [N, D] float32; row i belongs to row i of
    its predictions.parquet (read lazily from disk with `mmap`).

    Raises DataError when the run saved none (audit with --save-features) or the file does
    not match the run's predictions.
    """
    run_dir = Path(run_dir)
    path = run_dir / FEATURES_FILE
    if not path.is_file():
        raise DataError(
            f"'{run_dir}' holds no {FEATURES_FILE}; rerun the audit with --save-features "
            "(and --measure features) to keep the feature vectors"
        )
    try:
        vectors = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read '{path}': {exc}; rerun the audit that wrote it") from exc
    predictions = run_dir / PREDICTIONS_FILE
    if predictions.is_file():
        rows = pq.ParquetFile(predictions).metadata.num_rows
        if vectors.ndim != 2 or len(vectors) != rows:
            raise DataError(
                f"'{path}' holds {len(vectors)} vector(s) for {rows} prediction row(s); it "
                "belongs to another run: rerun the audit with --save-features"
            )
    return vectors
