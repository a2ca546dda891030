"""The outputs of `jaggy layers`: layers.json (per layer and shift) and layers.parquet.

layers.parquet: one row per (image, layer, shift) with the normalised equivariance error, plus
rows with layer 'pooled' and 'logits' (kind the same) holding their relative change. `shift`
is the view index; `dx`, `dy` the protocol's view parameters (px of the model input, (dx, dy)
order); `content_dx`, `content_dy` the displacement of the image content (px; crop moves
content opposite to its window); `cell_shift_x`, `cell_shift_y` that displacement in cells of
the layer's map; `on_grid` whether it is a whole number of cells; `aliasing_energy` the
layer's (per image, subsampling layers only). `cumulative_stride` is the larger of its axes.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ._atomic import OUT_HINT, atomic_write, atomic_write_json
from ._files import LAYERS_JSON_FILE, LAYERS_TABLE_FILE
from ._predictions import SCHEMA_VERSION, check_version, versioned_metadata
from ._records import check_record_version, read_json_file

LAYERS_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("layer", pa.string()),
        ("layer_index", pa.int32()),
        ("kind", pa.string()),
        ("subsampling", pa.bool_()),
        ("cumulative_stride", pa.int32()),
        ("shift", pa.int32()),
        ("dx", pa.float64()),
        ("dy", pa.float64()),
        ("content_dx", pa.float64()),
        ("content_dy", pa.float64()),
        ("cell_shift_x", pa.float64()),
        ("cell_shift_y", pa.float64()),
        ("on_grid", pa.bool_()),
        ("error", pa.float64()),
        ("aliasing_energy", pa.float64()),
    ],
    metadata=versioned_metadata(),
)


def write_layers_table(path: str | Path, columns: dict[str, list]) -> Path:
    """layers.parquet from columns named as LAYERS_SCHEMA (written atomically)."""
    path = Path(path)
    table = pa.table(columns, schema=LAYERS_SCHEMA)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp), hint=OUT_HINT)
    return path


def write_layers_record(path: str | Path, data: dict) -> Path:
    """layers.json (strict JSON: NaN refused); `data` starts with `schema_version`."""
    path = Path(path)
    atomic_write_json(
        path, {"schema_version": SCHEMA_VERSION, **data}, hint=OUT_HINT, allow_nan=False
    )
    return path


def read_layers(folder: str | Path) -> tuple[dict, pa.Table | None]:
    """(layers.json, layers.parquet or None) of a `jaggy layers` folder."""
    folder = Path(folder)
    path = folder / LAYERS_JSON_FILE
    data = read_json_file(path)
    check_record_version(path, data, "layers")
    table_path = folder / LAYERS_TABLE_FILE
    table = None
    if table_path.is_file():
        table = pq.read_table(table_path)
        check_version(table_path, table.schema, "layers")
    return data, table
