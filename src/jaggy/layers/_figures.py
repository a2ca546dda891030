"""PNG figures of a LayersReport: error versus depth, error versus shift (the periodicity of
the strides), and one image's feature maps at consecutive shifts (the study's picture)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np

from ..results._atomic import OUT_HINT, atomic_write_bytes
from ._analysis import LayersReport, default_show_layers, nan_mean


def _figure(figsize: tuple[float, float]):
    """A matplotlib Figure with an Agg canvas; pyplot (and its global backend) is not touched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue(), hint=OUT_HINT)
    return path


def shift_axis(report: LayersReport) -> tuple[np.ndarray, str]:
    """x values of the views (px of content displacement along the path, or the view index
    for the grid path) and the axis label."""
    path = report.protocol.get("path", "diagonal")
    if path == "grid":
        return np.arange(len(report.views), dtype=float), "view (grid, serpentine order)"
    amount = np.array([max(abs(ux), abs(uy)) for ux, uy in report.displacements])
    return amount, f"shift along the {path} path (px)"


def write_figures(
    report: LayersReport, out: Path, show_layers: list[str] | None = None
) -> list[Path]:
    """Write error_vs_depth.png, error_vs_shift.png and feature_maps.png into `out`."""
    if show_layers is None and report.feature_maps is not None and report.feature_maps.maps:
        show_layers = list(report.feature_maps.maps)
    paths = [
        _error_vs_depth(report, out / "error_vs_depth.png"),
        _error_vs_shift(report, out / "error_vs_shift.png", show_layers),
    ]
    if report.feature_maps is not None and report.feature_maps.maps:
        paths.append(_feature_maps(report, out / "feature_maps.png"))
    return paths


def _error_vs_depth(report: LayersReport, path: Path) -> Path:
    data = report.to_dict()["layers"]
    x = np.arange(len(data))
    on = np.array(
        [np.nan if d["mean_error_on_grid"] is None else d["mean_error_on_grid"] for d in data]
    )
    off = np.array(
        [np.nan if d["mean_error_off_grid"] is None else d["mean_error_off_grid"] for d in data]
    )
    fig = _figure((max(7.0, len(data) * 0.06), 4.0))
    ax = fig.subplots()
    ax.plot(
        x,
        off,
        "-",
        color="tab:red",
        lw=1.4,
        label="shifts not a multiple of the cumulative stride (shiftability)",
    )
    ax.plot(
        x,
        on,
        "-",
        color="tab:blue",
        lw=1.4,
        label="shifts a multiple of the cumulative stride (equivariance)",
    )
    for layer in report.stride_map.subsampling:
        ax.axvline(layer.index, color="0.6", lw=0.8, ls=":")
        ax.annotate(
            f"x{max(layer.cumulative_stride)}",
            (layer.index, 0.02),
            xycoords=("data", "axes fraction"),
            xytext=(2, 0),
            textcoords="offset points",
            fontsize=7,
            color="0.35",
            ha="left",
            va="bottom",
        )
    ax.set_xlabel("layer (execution order; dotted: subsampling layers)")
    ax.set_ylabel("normalised equivariance error")
    ax.set_title(
        f"{report.model}: where equivariance breaks ({report.protocol['name']} shifts, "
        f"{report.n_images} image(s))",
        fontsize=10,
    )
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _error_vs_shift(report: LayersReport, path: Path, show_layers: list[str] | None) -> Path:
    x, label = shift_axis(report)
    mean = report.mean_errors()
    names = show_layers or default_show_layers(report.stride_map)
    fig = _figure((7.5, 4.2))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["viridis"]
    for n, name in enumerate(names):
        layer = report.stride_map.layer(name)
        ax.plot(
            x,
            mean[layer.index],
            "o-",
            ms=2.5,
            lw=1.1,
            color=cmap(n / max(1, len(names) - 1)),
            label=f"{name} (stride {max(layer.cumulative_stride)})",
        )
    for name, values, style in (
        ("pooled features", report.pooled, "k--"),
        ("logits", report.logits, "k:"),
    ):
        if values.size and np.isfinite(values).any():
            ax.plot(x, nan_mean(values), style, lw=1.4, label=f"{name} (relative change)")
    total = max(report.stride_map.total_stride)
    if report.protocol.get("path") != "grid" and x.size and x.max() >= total:
        for multiple in np.arange(total, x.max() + 1e-9, total):
            ax.axvline(multiple, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel(label)
    ax.set_ylabel("normalised error / relative change")
    ax.set_title(f"{report.model}: error versus shift (total stride {total})", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _feature_maps(report: LayersReport, path: Path) -> Path:
    maps = report.feature_maps
    x, label = shift_axis(report)
    columns = len(maps.view_indices)
    rows = 1 + len(maps.maps)
    fig = _figure((1.6 * columns, 1.6 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for c, k in enumerate(maps.view_indices):
        axes[0, c].imshow(maps.inputs[c] if c < len(maps.inputs) else np.zeros((2, 2)))
        axes[0, c].set_title(f"{x[k]:g} px", fontsize=8)
    axes[0, 0].set_ylabel("input", fontsize=7)
    for r, (name, images) in enumerate(maps.maps.items(), start=1):
        low = min(float(np.min(m)) for m in images)
        high = max(float(np.max(m)) for m in images)
        for c in range(columns):
            if c < len(images):
                axes[r, c].imshow(
                    images[c], cmap="magma", vmin=low, vmax=high, interpolation="nearest"
                )
        stride = max(report.stride_map.layer(name).cumulative_stride)
        axes[r, 0].set_ylabel(f"{name}\nch {maps.channels[name]}, x{stride}", fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{maps.image_id}: one channel per layer at consecutive shifts", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
