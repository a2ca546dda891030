"""Training and distillation: the built-in canvas experiment, training on a user's data, and
fine-tuning a (remedied) model so it recovers its accuracy."""

from ._distill import distill
from ._experiment import CanvasConfig, TrainResult, run_canvas_experiment
from ._finetune import FinetuneConfig, FinetuneResult, finetune
from ._user import DataTrainResult, TrainConfig, train_on_data

__all__ = [
    "CanvasConfig",
    "DataTrainResult",
    "FinetuneConfig",
    "FinetuneResult",
    "TrainConfig",
    "TrainResult",
    "distill",
    "finetune",
    "run_canvas_experiment",
    "train_on_data",
]
