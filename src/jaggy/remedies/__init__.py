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

from ._aps import PolyphaseDownsample2d
from ._blur import BlurPool2d
from ._spec import (
    RemedySpec,
    apply_remedy,
    list_remedies,
    parse_remedy,
    register_remedy,
    remedy_info,
)
from ._surgery import RemedyWarning, aps, blurpool, circular_padding

__all__ = [
    "BlurPool2d",
    "PolyphaseDownsample2d",
    "RemedySpec",
    "RemedyWarning",
    "apply_remedy",
    "aps",
    "blurpool",
    "circular_padding",
    "list_remedies",
    "parse_remedy",
    "register_remedy",
    "remedy_info",
]
