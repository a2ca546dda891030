"""The one owner of every file format jaggy writes, its readers, and the atomic writer.

Audit folder: predictions.parquet (rows per view, `iter_sequences`), metrics.parquet (rows per
image and protocol key, `read_metrics`), summary.json (`read_summary`), manifest.json
(`read_manifest`), run.json (`read_run_record`). Every file is written through `atomic_write`
with ordinary permissions under the user's umask.
"""

from ._atomic import (
    OUT_HINT,
    RESUME_HINT,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from ._compare import read_compare, write_compare
from ._files import (
    COMPARE_FILE,
    LAYERS_JSON_FILE,
    LAYERS_TABLE_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    REPORT_FILE,
    RUN_FILE,
    SUMMARY_FILE,
)
from ._layers import LAYERS_SCHEMA, read_layers, write_layers_record, write_layers_table
from ._metrics_table import (
    metric_columns,
    metrics_block,
    metrics_schema,
    read_metrics,
    write_metrics,
)
from ._predictions import (
    PREDICTION_SCHEMA,
    SCHEMA_VERSION,
    check_version,
    iter_prediction_batches,
    iter_sequences,
    open_predictions,
    read_sequences,
    versioned_metadata,
)
from ._records import (
    Estimate,
    Manifest,
    ProtocolSummary,
    RunRecord,
    Session,
    Summary,
    check_record_version,
    read_json_file,
    read_manifest,
    read_run_record,
    read_summary,
    write_record,
)
from ._sequences import PredictionSequences

__all__ = [
    "COMPARE_FILE",
    "LAYERS_JSON_FILE",
    "LAYERS_SCHEMA",
    "LAYERS_TABLE_FILE",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "OUT_HINT",
    "PREDICTIONS_FILE",
    "PREDICTION_SCHEMA",
    "REPORT_FILE",
    "RESUME_HINT",
    "RUN_FILE",
    "SCHEMA_VERSION",
    "SUMMARY_FILE",
    "Estimate",
    "Manifest",
    "PredictionSequences",
    "ProtocolSummary",
    "RunRecord",
    "Session",
    "Summary",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_record_version",
    "check_version",
    "iter_prediction_batches",
    "iter_sequences",
    "metric_columns",
    "metrics_block",
    "metrics_schema",
    "open_predictions",
    "read_compare",
    "read_json_file",
    "read_layers",
    "read_manifest",
    "read_metrics",
    "read_run_record",
    "read_sequences",
    "read_summary",
    "versioned_metadata",
    "write_compare",
    "write_layers_record",
    "write_layers_table",
    "write_metrics",
    "write_record",
]
