"""PNG figures of `jaggy bias`: the study's photographer's-bias picture (centre heat map, size
and aspect histograms) per frame, per-class small multiples, and invariance by object size and
position. Drawn on Agg Figures (pyplot's global state is never touched)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..figures._palette import PALETTE
from ..results._atomic import atomic_write
from ._outputs import HINT
from ._statistics import BoxGeometry, center_histogram

MAX_CLASS_PANELS = 12
# Metrics drawn by the invariance figures (every metric is in bias.json).
CHART_METRICS = ("p_top1_change", "mac", "jaggedness", "accuracy")


def _figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")  # labels and colour bars never overlap
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    data = buffer.getvalue()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    atomic_write(path, write, hint=HINT)
    return path


def draw_heatmap(ax, counts, title: str = ""):
    """Box centres over the frame (x right, y down), as a fraction of the boxes per cell."""
    counts = np.asarray(counts, dtype=np.float64)
    share = counts / max(counts.sum(), 1.0)
    image = ax.imshow(share, extent=(0, 1, 1, 0), cmap="magma", interpolation="nearest")
    for third in (1 / 3, 2 / 3):
        ax.axvline(third, color="white", lw=0.6, alpha=0.6)
        ax.axhline(third, color="white", lw=0.6, alpha=0.6)
    ax.set_xticks([0, 0.5, 1])
    ax.set_yticks([0, 0.5, 1])
    if title:
        ax.set_title(title, fontsize=9)
    return image


def draw_size_histogram(ax, histogram: dict, frame: str):
    edges, counts = np.asarray(histogram["edges"]), np.asarray(histogram["counts"])
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=PALETTE[0])
    ax.set_xlabel(f"object size: sqrt(box area / {frame} area)")
    ax.set_ylabel("boxes")


def draw_aspect_histogram(ax, histogram: dict):
    edges, counts = np.asarray(histogram["edges"]), np.asarray(histogram["counts"])
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=PALETTE[2])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("aspect: box width / height")
    ax.set_ylabel("boxes")


def bias_figure(histograms: dict, title: str, frame: str, path: Path) -> Path:
    """Centre heat map, size histogram and aspect histogram of one frame."""
    fig = _figure((13, 3.8))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.3, 1.3]})
    image = draw_heatmap(axes[0], histograms["center_histogram"], "box centres")
    fig.colorbar(image, ax=axes[0], fraction=0.046, pad=0.02, label="share of boxes")
    draw_size_histogram(axes[1], histograms["size_histogram"], frame)
    draw_aspect_histogram(axes[2], histograms["aspect_histogram"])
    fig.suptitle(title)
    return save_png(fig, path)


def classes_figure(
    geometry: BoxGeometry, box_class: np.ndarray, class_names: list[str], title: str, path: Path
) -> Path | None:
    """Centre heat maps of the largest classes (up to MAX_CLASS_PANELS), largest first."""
    counts = np.bincount(box_class, minlength=len(class_names))
    largest = [c for c in np.argsort(-counts, kind="stable") if counts[c]][:MAX_CLASS_PANELS]
    if len(largest) < 2:
        return None
    columns = min(4, len(largest))
    rows = -(-len(largest) // columns)
    fig = _figure((3.0 * columns, 3.0 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax, c in zip(axes, largest, strict=False):
        mine = box_class == c
        draw_heatmap(
            ax,
            center_histogram(geometry.cx[mine], geometry.cy[mine]),
            f"{class_names[c][:28]} ({counts[c]})",
        )
    for ax in axes[len(largest) :]:
        ax.set_axis_off()
    fig.suptitle(title)
    return save_png(fig, path)


def binned_metric_figure(
    by_bin: dict, title: str, xlabel: str, path: Path, metrics=CHART_METRICS
) -> Path | None:
    """Each of `metrics`' mean and 95% CI per bin (`invariance.by_size` or `.by_position`):
    one panel per protocol, one line per metric."""
    protocols = list(by_bin)
    if not protocols:
        return None
    fig = _figure((5.0 * len(protocols), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(protocols))).ravel()
    for ax, protocol in zip(axes, protocols, strict=True):
        entry = by_bin[protocol]
        edges = entry["edges"]
        middles = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
        drawn = [(m, entry["metrics"][m]) for m in metrics if m in entry["metrics"]]
        for k, (metric, bins) in enumerate(drawn):
            x, y, lo, hi = [], [], [], []
            for middle, cell in zip(middles, bins, strict=True):
                if cell["value"] is None:
                    continue
                x.append(middle)
                y.append(cell["value"])
                lo.append(cell["value"] - cell["ci95"][0])
                hi.append(cell["ci95"][1] - cell["value"])
            if x:
                ax.errorbar(
                    x,
                    y,
                    yerr=[lo, hi],
                    marker="o",
                    ms=3,
                    capsize=2,
                    label=metric,
                    color=PALETTE[k % len(PALETTE)],
                )
        ax.set_title(protocol, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_xlim(edges[0], edges[-1])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    return save_png(fig, path)


# ---- inline SVG for the HTML report (the same drawings, from bias.json's numbers) ----------


def heatmap_svg(counts, title: str, *, width: int = 260, height: int = 240) -> str:
    """The centre heat map as inline SVG: share of boxes per cell, x right, y down, the
    middle third outlined."""
    from ..figures._svg_export import figure_svg, new_figure, svg_style

    counts = np.asarray(counts, dtype=np.float64)
    share = counts / max(counts.sum(), 1.0)
    bins = share.shape[0]
    with svg_style():
        figure = new_figure(width, height)
        figure.set_layout_engine("constrained")
        axes = figure.add_subplot()
        edges = np.linspace(0, 1, bins + 1)
        mesh = axes.pcolormesh(edges, edges, share, cmap="magma", shading="flat")
        axes.set_xlim(0, 1)
        axes.set_ylim(1, 0)
        axes.set_aspect("equal")
        axes.grid(False)
        for third in (1 / 3, 2 / 3):
            axes.axvline(third, color="white", lw=0.6, alpha=0.7)
            axes.axhline(third, color="white", lw=0.6, alpha=0.7)
        axes.set_title(title)
        axes.set_xlabel("box centre x (image width)")
        axes.set_ylabel("y (image height)")
        figure.colorbar(mesh, ax=axes, fraction=0.046, pad=0.03, label="share of boxes")
        return figure_svg(figure, description=f"{title}: share of box centres per cell")


def histogram_svg(
    histogram: dict,
    title: str,
    x_label: str,
    *,
    log_x: bool = False,
    width: int = 320,
    height: int = 240,
) -> str:
    """A histogram ({"edges", "counts"} from bias.json) as inline SVG."""
    from ..figures._palette import PALETTE
    from ..figures._svg_export import figure_svg, new_figure, svg_style

    edges, counts = np.asarray(histogram["edges"]), np.asarray(histogram["counts"])
    with svg_style():
        figure = new_figure(width, height)
        figure.set_layout_engine("constrained")
        axes = figure.add_subplot()
        axes.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=PALETTE[0])
        if log_x:
            axes.set_xscale("log", base=2)
        axes.set_title(title)
        axes.set_xlabel(x_label)
        axes.set_ylabel("boxes")
        return figure_svg(figure, description=f"{title}: box counts per bin")
