"""Remedies as model surgery: anti-aliased (BlurPool) and adaptive polyphase (APS) subsampling,
and circular padding, for any PyTorch model.

- `blurpool(model, filt_size=4, pad="reflect")`: Zhang, ICML 2019, "Making convolutional
  networks shift-invariant again".
- `aps(model, circular=True)` and `circular_padding(model)`: Chaman & Dokmanić, CVPR 2021,
  "Truly shift-invariant convolutional neural networks"; together exactly invariant to
  circular shifts.
- `apply_remedy(loaded, "blurpool:4")`, `parse_remedy`, `list_remedies`: the spec strings
  that `--remedy` and `load_model(..., remedies=[...])` accept; `@register_remedy` adds one.

Conversions keep pretrained weights and state-dict keys, so converted models can be
fine-tuned and their checkpoints loaded by `jaggy.load_model(..., checkpoint=...)`.
"""

from ._aps import PhaseContext, PolyphaseDownsample2d
from ._blur import BlurPool2d, binomial_filter
from ._grid import GridAvgPool2d, GridConv2d, GridMaxPool2d
from ._padding import PAD_MODES
from ._spec import (
    RemedyInfo,
    RemedySpec,
    apply_remedy,
    list_remedies,
    parse_remedy,
    register_remedy,
    remedy_help,
    remedy_info,
    validate_remedies,
)
from ._surgery import RemedyWarning, aps, blurpool, circular_padding

__all__ = [
    "PAD_MODES",
    "BlurPool2d",
    "GridAvgPool2d",
    "GridConv2d",
    "GridMaxPool2d",
    "PhaseContext",
    "PolyphaseDownsample2d",
    "RemedyInfo",
    "RemedySpec",
    "RemedyWarning",
    "apply_remedy",
    "aps",
    "binomial_filter",
    "blurpool",
    "circular_padding",
    "list_remedies",
    "parse_remedy",
    "register_remedy",
    "remedy_help",
    "remedy_info",
    "validate_remedies",
]
