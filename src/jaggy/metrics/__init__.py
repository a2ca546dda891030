"""Metrics: pure functions over prediction sequences, per image; bootstrap CIs over images.

Nothing outside this package computes a metric: a registered metric becomes a column of
metrics.parquet and a key of summary.json.
"""

from ..results import PredictionSequences
from ._bootstrap import bootstrap_mean_ci
from ._functional import (
    MetricInfo,
    accuracy,
    consistency,
    consistency_pairs,
    flip_probability,
    jaggedness,
    list_metrics,
    mac,
    metric_info,
    p_top1_change,
    pairs_apart,
    path_consistency,
    per_image_metrics,
    pmk_accuracy,
    register_metric,
    top5_distance,
    worst_case_accuracy,
)
from ._imagenet_p import SEQUENCE_PROTOCOLS, flip_rates
from ._summary import (
    metrics_blocks,
    metrics_table,
    per_image_table,
    summarize_metrics,
    summarize_predictions,
    summarize_sequences,
)

__all__ = [
    "SEQUENCE_PROTOCOLS",
    "MetricInfo",
    "PredictionSequences",
    "accuracy",
    "bootstrap_mean_ci",
    "consistency",
    "consistency_pairs",
    "flip_probability",
    "flip_rates",
    "jaggedness",
    "list_metrics",
    "mac",
    "metric_info",
    "metrics_blocks",
    "metrics_table",
    "p_top1_change",
    "pairs_apart",
    "path_consistency",
    "per_image_metrics",
    "per_image_table",
    "pmk_accuracy",
    "register_metric",
    "summarize_metrics",
    "summarize_predictions",
    "summarize_sequences",
    "top5_distance",
    "worst_case_accuracy",
]
