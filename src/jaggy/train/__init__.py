"""Training and distillation: the built-in canvas experiment, training on a user's data, and
fine-tuning a (remedied) model so it recovers its accuracy."""

from ._distill import distill, distill_loss, distill_on_items, mean_kl
from ._experiment import (
    VARIANTS,
    CanvasConfig,
    TrainResult,
    VariantPlan,
    run_canvas_experiment,
    tiny_config,
)
from ._finetune import FinetuneConfig, FinetuneResult, audit_command, finetune
from ._typicality import (
    density_at,
    knn_distance,
    penultimate_features,
    position_density,
    position_histogram,
)
from ._user import DataTrainResult, TrainConfig, train_on_data

__all__ = [
    "VARIANTS",
    "CanvasConfig",
    "FinetuneConfig",
    "FinetuneResult",
    "DataTrainResult",
    "TrainConfig",
    "TrainResult",
    "VariantPlan",
    "audit_command",
    "density_at",
    "distill",
    "distill_loss",
    "distill_on_items",
    "finetune",
    "knn_distance",
    "mean_kl",
    "penultimate_features",
    "position_density",
    "position_histogram",
    "run_canvas_experiment",
    "tiny_config",
    "train_on_data",
]
