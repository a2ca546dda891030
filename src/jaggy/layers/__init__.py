"""Where invariance breaks, layer by layer (Azulay & Weiss, JMLR 2019, section 3).

- `stride_map(model, R)`: every spatial feature map, its own and cumulative stride, the
  subsampling layers and the total stride.
- `LayerAnalysis` / `analyze_layers`: per-layer equivariance (shifts that are multiples of the
  cumulative stride) and shiftability (the others, by band-limited interpolation), the relative
  change of the pooled features and logits, and aliasing energy at every subsampling layer.
- `write_layers_outputs`: layers.json, layers.parquet and figures.
"""

from ._aliasing import aliasing_energy
from ._analysis import LayerAnalysis, LayersReport, analyze_layers, shift_protocol
from ._equivariance import equivariance_error, shift_map
from ._outputs import write_layers_outputs
from ._run import LayersResult
from ._stride import LayerInfo, StrideMap, stride_map

__all__ = [
    "LayerAnalysis",
    "LayerInfo",
    "LayersReport",
    "LayersResult",
    "StrideMap",
    "aliasing_energy",
    "analyze_layers",
    "equivariance_error",
    "shift_map",
    "shift_protocol",
    "stride_map",
    "write_layers_outputs",
]
