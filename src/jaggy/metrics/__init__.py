"""Metrics: pure functions over prediction rows, per image; bootstrap CIs over images."""

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
from ._sequences import PredictionSequences
from ._summary import read_sequences, summarize_predictions, summarize_sequences

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
    "p_top1_change",
    "pairs_apart",
    "path_consistency",
    "per_image_metrics",
    "pmk_accuracy",
    "read_sequences",
    "register_metric",
    "summarize_predictions",
    "summarize_sequences",
    "top5_distance",
    "worst_case_accuracy",
]
