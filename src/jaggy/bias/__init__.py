"""Photographer's bias from annotations, and a model's invariance by object size and position
(Azulay & Weiss, JMLR 2019, section 5).

    from jaggy.bias import run_bias
    result = run_bias("instances_val2017.json", "bias-out", model="jaggy:efficientnet_lite0")
    result.statistics["center_mean"], result.statistics["input_frame"]["n_cut"]
"""

from ._run import BiasResult, run_bias

__all__ = ["BiasResult", "run_bias"]
