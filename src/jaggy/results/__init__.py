"""The one owner of every file format jaggy writes, its readers, and the atomic writer.

Audit folder: predictions.parquet (rows per view, `iter_sequences`), metrics.parquet (rows per
image and protocol key, `read_metrics`), summary.json (`read_summary`), manifest.json
(`read_manifest`), run.json (`read_run_record`), features.npy (`read_features`, with
--save-features), thumbnails/ (the views the report shows, `_thumbnails`). Every file is
written through `atomic_write` with ordinary permissions under the user's umask.
"""

from ._compare import read_compare
from ._features import read_features
from ._layers import read_layers
from ._metrics_table import read_metrics
from ._predictions import SCHEMA_VERSION, iter_sequences, read_sequences
from ._records import (
    Estimate,
    Manifest,
    ProtocolSummary,
    RunRecord,
    Summary,
    read_manifest,
    read_run_record,
    read_summary,
)
from ._sequences import PredictionSequences

__all__ = [
    "SCHEMA_VERSION",
    "Estimate",
    "Manifest",
    "PredictionSequences",
    "ProtocolSummary",
    "RunRecord",
    "Summary",
    "iter_sequences",
    "read_compare",
    "read_features",
    "read_layers",
    "read_manifest",
    "read_metrics",
    "read_run_record",
    "read_sequences",
    "read_summary",
]
