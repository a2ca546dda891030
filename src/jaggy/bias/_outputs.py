"""bias.json and boxes.parquet, written through the one atomic writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ArgumentError
from ..results._atomic import OUT_HINT, atomic_write, atomic_write_text

SCHEMA_VERSION = 1
WRITTEN_BY = "jaggy bias"
HINT = OUT_HINT


def prepare_out(out: str | Path) -> Path:
    """Create `out`; refuse a folder whose bias.json another program wrote (nothing jaggy did
    not write is overwritten)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ArgumentError(f"--out '{out}' is a file; give a folder")
    previous = out / "bias.json"
    if previous.is_file():
        try:
            owner = json.loads(previous.read_text()).get("written_by")
        except (ValueError, OSError, AttributeError):
            owner = None
        if owner != WRITTEN_BY:
            raise ArgumentError(
                f"{previous} exists and was not written by jaggy bias; choose another --out"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArgumentError(f"cannot create --out '{out}': {exc.strerror or exc}") from None
    return out


def write_json(path: Path, data: dict) -> Path:
    """Strict JSON (no NaN: undefined values are null)."""
    atomic_write_text(path, json.dumps(_finite(data), indent=2, allow_nan=False) + "\n", hint=HINT)
    return path


def _finite(value):
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def write_table(path: Path, table: pa.Table) -> Path:
    atomic_write(path, lambda tmp: pq.write_table(table, tmp), hint=HINT)
    return path


def dictionary_column(codes: np.ndarray, values: list[str]) -> pa.DictionaryArray:
    """A string column stored as codes into `values` (one entry per image or class)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32)), pa.array(values, pa.string())
    )
