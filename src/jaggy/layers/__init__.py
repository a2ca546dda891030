"""Where invariance breaks, layer by layer (Azulay & Weiss, JMLR 2019, section 3).

- `stride_map(model, R)`: every spatial feature map, its own and cumulative stride, the
  subsampling layers and the total stride.
- `LayerAnalysis` / `analyze_layers`: per-layer equivariance (shifts that are multiples of the
  cumulative stride) and shiftability (the others, by band-limited interpolation), the relative
  change of the pooled features and logits, and aliasing energy at every subsampling layer.
- `write_layers_outputs`: layers.json, layers.parquet and figures.
"""

from ._aliasing import aliasing_energy, dense_output
from ._analysis import (
    SHIFT_PROTOCOLS,
    FeatureMaps,
    LayerAnalysis,
    LayersReport,
    analyze_layers,
    default_show_layers,
    shift_protocol,
)
from ._equivariance import compare_maps, equivariance_error, shift_map, shift_matrix
from ._outputs import (
    LAYERS_SCHEMA,
    layers_table,
    summary_lines,
    write_layers_json,
    write_layers_outputs,
    write_layers_parquet,
)
from ._stride import LayerInfo, StrideMap, is_activation, module_kind, stride_map

__all__ = [
    "LAYERS_SCHEMA",
    "SHIFT_PROTOCOLS",
    "FeatureMaps",
    "LayerAnalysis",
    "LayerInfo",
    "LayersReport",
    "StrideMap",
    "aliasing_energy",
    "analyze_layers",
    "compare_maps",
    "default_show_layers",
    "dense_output",
    "equivariance_error",
    "is_activation",
    "layers_table",
    "module_kind",
    "shift_map",
    "shift_matrix",
    "shift_protocol",
    "stride_map",
    "summary_lines",
    "write_layers_json",
    "write_layers_outputs",
    "write_layers_parquet",
]
