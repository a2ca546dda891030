"""compare.json, the output of `jaggy compare`: one row per variant (base model first).

Each row: `variant`, `remedies`, `run` (the variant's audit folder, relative), `params`,
`protocols` (as in that run's summary.json), `ms_per_image`, `ms_ratio_to_base`.
"""

from __future__ import annotations

from pathlib import Path

from ._atomic import OUT_HINT, atomic_write_json
from ._files import COMPARE_FILE
from ._predictions import SCHEMA_VERSION
from ._records import check_record_version, read_json_file


def write_compare(folder: str | Path, data: dict) -> Path:
    """compare.json in `folder` (written atomically), with the schema version first."""
    path = Path(folder) / COMPARE_FILE
    atomic_write_json(path, {"schema_version": SCHEMA_VERSION, **data}, hint=OUT_HINT)
    return path


def read_compare(folder: str | Path) -> dict:
    """compare.json of a `jaggy compare` folder."""
    path = Path(folder) / COMPARE_FILE
    data = read_json_file(path)
    check_record_version(path, data, "compare")
    return data
