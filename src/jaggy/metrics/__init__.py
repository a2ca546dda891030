"""Metrics: pure functions over prediction sequences, per image; bootstrap CIs over images.

Nothing outside this package computes a metric: a registered metric becomes a column of
metrics.parquet and a key of summary.json. Class metrics live in `_functional`, the
representation-change metrics (`--measure features`) in `_representation`.
"""

from . import _worst_case  # noqa: F401  (registers the worst-case metrics)
from ._bootstrap import bootstrap_mean_ci
from ._functional import MetricInfo, list_metrics, metric_info, per_image_metrics, register_metric
from ._representation import DEFAULT_FEATURE_THRESHOLD
from ._summary import summarize_metrics, summarize_predictions

__all__ = [
    "DEFAULT_FEATURE_THRESHOLD",
    "MetricInfo",
    "bootstrap_mean_ci",
    "list_metrics",
    "metric_info",
    "per_image_metrics",
    "register_metric",
    "summarize_metrics",
    "summarize_predictions",
]
