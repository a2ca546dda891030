"""Figures of the canvas experiment, drawn from train.json alone (matplotlib).

- failure maps: a metric over the canvas, one panel per variant and object size, plotted at
  the object's centre (x right, y down, px);
- metric versus typicality: by position density of the variant's training positions, and by
  the image's distance to its k nearest training images (pixels, features);
- metric versus object size.
Each returns a Figure; `write_figures` saves them as PNG files through the atomic writer, and
the report renders the same figures as SVG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..figures._svg_export import figure_svg, svg_style
from ..metrics import metric_info
from ..results._atomic import atomic_write

MAP_METRICS = ("accuracy", "p_top1_change")
CURVE_METRICS = ("accuracy", "p_top1_change", "jaggedness")


def _value(entry) -> float:
    if isinstance(entry, dict) and entry.get("value") is not None:
        return float(entry["value"])
    return float("nan")


def _ci(entry) -> tuple[float, float]:
    if isinstance(entry, dict) and entry.get("ci95") and None not in entry["ci95"]:
        return float(entry["ci95"][0]), float(entry["ci95"][1])
    return float("nan"), float("nan")


def cell_map(cells: list[dict], size: int, canvas: int, metric: str) -> np.ndarray:
    """[P, P] values over top-left positions (P = canvas - size + 1), NaN where unmeasured."""
    side = canvas - size + 1
    grid = np.full((side, side), np.nan)
    for cell in cells:
        x, y, w, h = cell["x"], cell["y"], cell["width"], cell["height"]
        grid[y : y + h, x : x + w] = _value(cell.get(metric))
    return grid


def failure_maps(record: dict, metric: str) -> Figure:
    canvas = record["config"]["geometry"]["canvas"]
    variants = record["variants"]
    sizes = [str(s) for s in record["config"]["eval_sizes"]]
    fig = Figure(figsize=(1.9 * len(sizes) + 1.2, 1.75 * len(variants) + 0.6), layout="constrained")
    axes = fig.subplots(len(variants), len(sizes), squeeze=False)
    top = 1.0
    if metric != "accuracy":
        values = [
            _value(c.get(metric))
            for v in variants
            for cells in v["by_position"].values()
            for c in cells
        ]
        finite = [x for x in values if np.isfinite(x)]
        top = max(finite) if finite else 1.0
        top = top if top > 0 else 1.0
    image = None
    for row, variant in enumerate(variants):
        for col, size in enumerate(sizes):
            ax = axes[row][col]
            s = int(size)
            grid = cell_map(variant["by_position"].get(size, []), s, canvas, metric)
            image = ax.imshow(
                grid,
                extent=(s / 2 - 0.5, canvas - s / 2 + 0.5, canvas - s / 2 + 0.5, s / 2 - 0.5),
                vmin=0.0,
                vmax=top,
                cmap="viridis" if metric == "accuracy" else "magma",
                interpolation="nearest",
            )
            ax.set_xlim(0, canvas)
            ax.set_ylim(canvas, 0)
            ax.set_xticks([0, canvas // 2, canvas])
            ax.set_yticks([0, canvas // 2, canvas])
            ax.tick_params(labelsize=6)
            if row == 0:
                ax.set_title(f"size {size} px", fontsize=8)
            if col == 0:
                ax.set_ylabel(variant["name"], fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label=metric_info(metric).label)
    fig.suptitle(f"{metric_info(metric).label} over the canvas (object centre, px)", fontsize=9)
    return fig


def _curves(ax, variants, groups_of, metric: str, labels: list[str]) -> None:
    for variant in variants:
        groups = groups_of(variant)
        index = {g["bin"]: g for g in groups}
        xs, ys, lo, hi = [], [], [], []
        for i, label in enumerate(labels):
            if label in index:
                xs.append(i)
                ys.append(_value(index[label].get(metric)))
                a, b = _ci(index[label].get(metric))
                lo.append(ys[-1] - a if np.isfinite(a) else 0.0)
                hi.append(b - ys[-1] if np.isfinite(b) else 0.0)
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=3, capsize=2, label=variant["name"])
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([label.split(" (")[0] for label in labels], rotation=25, fontsize=6)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel(metric_info(metric).label, fontsize=8)


def typicality_figure(record: dict) -> Figure:
    variants = record["variants"]
    density_labels = [b["bin"] for b in record["typicality"]["density_bins"]]
    image_labels = ["nearest third", "middle third", "farthest third"]
    columns = [
        (
            "position density (own training positions)",
            lambda v: v["by_position_density"],
            density_labels,
        ),
        ("image distance, pixels", lambda v: v["by_image_distance"]["pixels"], image_labels),
        ("image distance, features", lambda v: v["by_image_distance"]["features"], image_labels),
    ]
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    axes = fig.subplots(len(CURVE_METRICS), len(columns), squeeze=False)
    for col, (title, groups_of, labels) in enumerate(columns):
        for row, metric in enumerate(CURVE_METRICS):
            ax = axes[row][col]
            _curves(ax, variants, groups_of, metric, labels)
            if row == 0:
                ax.set_title(title, fontsize=8)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=4, fontsize=7)
    k = record["typicality"]["k"]
    fig.suptitle(f"metric versus typicality (95% CI; k = {k} neighbours)", fontsize=9)
    return fig


def size_figure(record: dict) -> Figure:
    variants = record["variants"]
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    axes = fig.subplots(1, len(CURVE_METRICS), squeeze=False)
    for col, metric in enumerate(CURVE_METRICS):
        ax = axes[0][col]
        for variant in variants:
            sizes = sorted(variant["by_size"], key=int)
            ys = [_value(variant["by_size"][s].get(metric)) for s in sizes]
            cis = [_ci(variant["by_size"][s].get(metric)) for s in sizes]
            lo = [y - c[0] if np.isfinite(c[0]) else 0.0 for y, c in zip(ys, cis, strict=True)]
            hi = [c[1] - y if np.isfinite(c[1]) else 0.0 for y, c in zip(ys, cis, strict=True)]
            ax.errorbar(
                [int(s) for s in sizes],
                ys,
                yerr=[lo, hi],
                marker="o",
                ms=3,
                capsize=2,
                label=variant["name"],
            )
        ax.set_xlabel("object size (px)", fontsize=8)
        ax.set_ylabel(metric_info(metric).label, fontsize=8)
        ax.tick_params(labelsize=7)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", fontsize=7)
    fig.suptitle("metric versus object size (95% CI)", fontsize=9)
    return fig


def all_figures(record: dict) -> dict[str, Figure]:
    figures = {f"map_{m}": failure_maps(record, m) for m in MAP_METRICS}
    figures["vs_typicality"] = typicality_figure(record)
    figures["vs_size"] = size_figure(record)
    return figures


def write_figures(record: dict, folder: Path) -> dict[str, str]:
    """Every figure as `folder/<name>.png`; returns {name: path relative to the run}."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, fig in all_figures(record).items():
        path = folder / f"{name}.png"
        atomic_write(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=100))
        written[name] = f"{folder.name}/{path.name}"
    return written


def report_svgs(record: dict) -> dict[str, str]:
    """Every figure as inline SVG for the report (the page's style, text kept as text)."""
    out = {}
    with svg_style():
        figures = all_figures(record)
    for name, fig in figures.items():
        out[name] = figure_svg(fig, description=f"canvas experiment: {name}", tight=True)
    return out
