"""Photographer's bias from annotations, and a model's invariance by object size and position
(Azulay & Weiss, JMLR 2019, section 5).

    from jaggy.bias import run_bias
    result = run_bias("instances_val2017.json", "bias-out", model="jaggy:efficientnet_lite0")
    result.statistics["center_mean"], result.statistics["input_frame"]["n_cut"]
"""

from ._frames import InputFrame, resize_and_crop, to_input_frame
from ._run import BiasResult, boxes_table, image_geometry, run_bias
from ._statistics import (
    CENTER_BINS,
    QUANTILES,
    BoxGeometry,
    center_histogram,
    frame_statistics,
    kl_from_uniform,
)

__all__ = [
    "CENTER_BINS",
    "QUANTILES",
    "BiasResult",
    "BoxGeometry",
    "InputFrame",
    "boxes_table",
    "center_histogram",
    "frame_statistics",
    "image_geometry",
    "kl_from_uniform",
    "resize_and_crop",
    "run_bias",
    "to_input_frame",
]
