"""Writing a LayersReport: layers.json, layers.parquet (long format) and figures, atomically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..results import SCHEMA_VERSION
from ..results._files import LAYERS_JSON_FILE, LAYERS_TABLE_FILE
from ..results._layers import LAYERS_SCHEMA, write_layers_record, write_layers_table
from ._analysis import LayersReport


def layers_columns(report: LayersReport) -> dict[str, list]:
    """The columns of layers.parquet (format: `jaggy.results._layers`): one row per (image,
    layer, shift), plus the 'pooled' and 'logits' rows."""
    columns: dict[str, list] = {name: [] for name in LAYERS_SCHEMA.names}
    n_views = len(report.views)
    sub_index = {layer.index: j for j, layer in enumerate(report.stride_map.subsampling)}
    total = report.stride_map.total_stride
    for i, image_id in enumerate(report.image_ids):
        for li, layer in enumerate(report.layers):
            j = sub_index.get(layer.index)
            alias = None if j is None else _opt(report.aliasing_input[i, j])
            for k in range(n_views):
                sx, sy = report.cell_shifts[li][k]
                _append(
                    columns,
                    report,
                    image_id,
                    layer.name,
                    layer.index,
                    layer.kind,
                    layer.subsampling,
                    max(layer.cumulative_stride),
                    k,
                    sx,
                    sy,
                    report.on_grid(li, k),
                    _opt(report.errors[i, li, k]),
                    alias,
                )
        for offset, (name, values) in enumerate(
            (("pooled", report.pooled), ("logits", report.logits))
        ):
            for k in range(n_views):
                ux, uy = report.displacements[k]
                sx, sy = ux / total[1], uy / total[0]  # total stride: (rows, columns)
                _append(
                    columns,
                    report,
                    image_id,
                    name,
                    len(report.layers) + offset,
                    name,
                    False,
                    max(total),
                    k,
                    sx,
                    sy,
                    _whole(sy) and _whole(sx),
                    _opt(values[i, k]),
                    None,
                )
    return columns


def layers_table(report: LayersReport) -> pa.Table:
    return pa.table(layers_columns(report), schema=LAYERS_SCHEMA)


def _append(
    columns,
    report,
    image_id,
    layer,
    index,
    kind,
    subsampling,
    stride,
    k,
    sx,
    sy,
    on_grid,
    error,
    alias,
) -> None:
    dx, dy = report.views[k]
    ux, uy = report.displacements[k]
    row = (
        image_id,
        layer,
        index,
        kind,
        subsampling,
        int(stride),
        k,
        dx,
        dy,
        ux,
        uy,
        sx,
        sy,
        bool(on_grid),
        error,
        alias,
    )
    for name, value in zip(LAYERS_SCHEMA.names, row, strict=True):
        columns[name].append(value)


def _whole(value: float) -> bool:
    return abs(value - round(value)) < 1e-9


def _opt(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def write_layers_json(report: LayersReport, path: str | Path, extra: dict | None = None) -> Path:
    """layers.json: `total_stride`, `layers` (name, kind, stride, cumulative_stride, out_shape,
    equivariance_error per shift, aliasing_energy, ...), shifts, pooled and logits curves;
    `extra` entries (run details) are added at the top level."""
    return write_layers_record(path, layers_record(report, extra))


def layers_record(report: LayersReport, extra: dict | None = None) -> dict:
    """The content of layers.json: its schema version, the report, then `extra`."""
    return {"schema_version": SCHEMA_VERSION, **report.to_dict(), **(extra or {})}


def write_layers_parquet(report: LayersReport, path: str | Path) -> Path:
    return write_layers_table(path, layers_columns(report))


def write_layers_outputs(
    report: LayersReport, out: str | Path, figures: bool = True, extra: dict | None = None
) -> list[Path]:
    """Write layers.json, layers.parquet and (with `figures`) the PNG figures into `out`.
    Returns the written paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        write_layers_json(report, out / LAYERS_JSON_FILE, extra),
        write_layers_parquet(report, out / LAYERS_TABLE_FILE),
    ]
    if figures and report.n_images:
        from ._figures import write_figures

        written += write_figures(report, out)
    return written


def summary_lines(report: LayersReport) -> list[str]:
    """A console summary: mean error on and off the grid per cumulative stride, aliasing
    energy per subsampling layer, pooled and logits change."""
    mean = report.mean_errors()
    lines = [
        f"total stride {report.stride_map.total_stride[0]}"
        + (
            f"x{report.stride_map.total_stride[1]}"
            if len(set(report.stride_map.total_stride)) > 1
            else ""
        )
        + f"; {len(report.layers)} layers, {len(report.stride_map.subsampling)} subsampling; "
        f"{report.n_images} image(s) x {len(report.views)} views ({report.protocol['name']})"
    ]
    groups: dict[tuple[int, int], list[int]] = {}
    for li, layer in enumerate(report.layers):
        groups.setdefault(layer.cumulative_stride, []).append(li)
    lines.append("cum. stride  layers  error on grid  error off grid")
    for stride, indices in groups.items():
        on = [
            mean[li, k]
            for li in indices
            for k in range(1, len(report.views))
            if report.on_grid(li, k)
        ]
        off = [
            mean[li, k]
            for li in indices
            for k in range(1, len(report.views))
            if not report.on_grid(li, k)
        ]
        lines.append(
            f"{'x'.join(str(s) for s in sorted(set(stride))):>11}  {len(indices):>6}  "
            f"{_fmt(on):>13}  {_fmt(off):>14}"
        )
    if report.stride_map.subsampling:
        lines.append(
            "subsampling layer  aliasing energy (input / stride-1 output / before nonlinearity)"
        )
        data = report.to_dict()["layers"]
        for layer in report.stride_map.subsampling:
            entry = data[layer.index]
            values = [
                entry["aliasing_energy"],
                entry["aliasing_energy_dense"],
                entry["aliasing_energy_before_nonlinearity"],
            ]
            lines.append(
                f"  {layer.name}: " + " / ".join("-" if v is None else f"{v:.3f}" for v in values)
            )
    for name, values in (("pooled", report.pooled), ("logits", report.logits)):
        curve = np.nanmean(values, axis=0) if values.size and np.isfinite(values).any() else None
        if curve is not None:
            lines.append(
                f"{name} relative change, mean over shifts > 0: {np.nanmean(curve[1:]):.4f}"
            )
    return lines


def _fmt(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    return f"{np.mean(finite):.4f}" if finite else "-"
