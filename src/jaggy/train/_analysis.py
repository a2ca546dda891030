"""Per-image metrics of a canvas audit, grouped by position, size and typicality, with CIs.

Input: the audit's per-image table (`metrics.parquet`: one row per image and protocol key,
one column per registered metric) and, per evaluation image, its typicality. Nothing here
computes a metric: a group's value is the mean over images of each image's mean over the
group's rows, and its 95% CI is `jaggy.metrics.bootstrap_mean_ci` over those images (the
engine's own convention: images are the unit of resampling).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..metrics import bootstrap_mean_ci, list_metrics
from ..protocols.canvas import CELL, cell_positions, parse_canvas_key
from ..results import read_metrics
from ._typicality import density_at, tertile_bins

if TYPE_CHECKING:
    import pandas as pd  # pyarrow's to_pandas imports it when a table is read

# Position density relative to a uniform spread over the canvas (density x R^2).
DENSITY_BINS = (
    ("never trained there", 0.0, 0.0),
    ("rare (0-0.25x uniform)", 0.0, 0.25),
    ("below uniform (0.25-1x)", 0.25, 1.0),
    ("above uniform (1-4x)", 1.0, 4.0),
    ("typical (>4x uniform)", 4.0, float("inf")),
)
IMAGE_BINS = ("nearest third", "middle third", "farthest third")


@dataclass(frozen=True)
class Cell:
    """One `canvas@S/xXyY` key: size S, first position (X, Y), extent, view centres."""

    key: str
    size: int
    x: int
    y: int
    width: int
    height: int

    @property
    def centres(self) -> np.ndarray:
        half = self.size / 2.0
        positions = cell_positions(self.x, self.y, self.width, self.height)
        return np.array([(px + half, py + half) for px, py in positions])


def canvas_cells(keys, canvas: int) -> dict[str, Cell]:
    """The cells of every canvas key among `keys`."""
    cells = {}
    for key in keys:
        parsed = parse_canvas_key(key)
        if parsed is None:
            continue
        size, x, y = parsed
        positions = canvas - size + 1
        cells[key] = Cell(key, size, x, y, min(CELL, positions - x), min(CELL, positions - y))
    return cells


def metric_names(table: pd.DataFrame) -> list[str]:
    return [m for m in list_metrics() if m in table.columns]


def group_entry(rows: pd.DataFrame, name: str, seed: int) -> dict:
    """{metric: {"value", "ci95"}, "n_images", "n_rows"} of a group of per-image rows."""
    per_image = rows.groupby("image_index")[metric_names(rows)].mean()
    entry: dict = {}
    for metric in per_image.columns:
        value, ci = bootstrap_mean_ci(
            per_image[metric].to_numpy(), seed=[seed, zlib.crc32(f"{name}/{metric}".encode())]
        )
        entry[metric] = {"value": value, "ci95": ci}
    entry["n_images"] = int(len(per_image))
    entry["n_rows"] = int(len(rows))
    return entry


def paired_difference(
    rows: pd.DataFrame, base_rows: pd.DataFrame, name: str, seed: int, metrics: list[str]
) -> dict:
    """Mean over images of (variant - base) per-image values of the same group, with a
    bootstrap CI over images (paired: both sides saw the same images and views)."""
    a = rows.groupby("image_index")[metrics].mean()
    b = base_rows.groupby("image_index")[metrics].mean()
    common = a.index.intersection(b.index)
    entry: dict = {}
    for metric in metrics:
        diff = a.loc[common, metric].to_numpy() - b.loc[common, metric].to_numpy()
        value, ci = bootstrap_mean_ci(
            diff, seed=[seed, zlib.crc32(f"diff/{name}/{metric}".encode())]
        )
        entry[metric] = {"value": value, "ci95": ci}
    entry["n_images"] = int(len(common))
    return entry


def density_bin(ratio: float) -> int:
    """Index into DENSITY_BINS of a density ratio (density x R^2)."""
    if ratio <= 0.0:
        return 0
    for i, (_, lo, hi) in enumerate(DENSITY_BINS[1:], start=1):
        if lo < ratio <= hi:
            return i
    return len(DENSITY_BINS) - 1


def annotate(
    table: pd.DataFrame,
    cells: dict[str, Cell],
    *,
    canvas: int,
    bin_px: int,
    densities: dict[str, np.ndarray],
    distances: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The per-image table of canvas keys with size, cell, the density ratio of each position
    histogram in `densities` (column `density_<name>`: the mean over the cell's positions of
    density x R^2) and each image's typicality (column `distance_<space>`, by image index)."""
    table = table[table["protocol"].isin(cells)].copy()
    table["size"] = [cells[k].size for k in table["protocol"]]
    table["cell_x"] = [cells[k].x for k in table["protocol"]]
    table["cell_y"] = [cells[k].y for k in table["protocol"]]
    for name, density in densities.items():
        per_cell = {
            key: float(density_at(density, canvas, bin_px, cell.centres).mean()) * canvas**2
            for key, cell in cells.items()
        }
        table[f"density_{name}"] = table["protocol"].map(per_cell)
    for space, values in distances.items():
        table[f"distance_{space}"] = values[table["image_index"].to_numpy()]
    return table


def by_size(table: pd.DataFrame, seed: int) -> dict:
    return {
        str(size): group_entry(rows, f"size{size}", seed)
        for size, rows in sorted(table.groupby("size"), key=lambda kv: kv[0])
    }


def by_density(table: pd.DataFrame, column: str, seed: int) -> list[dict]:
    bins = table[column].map(density_bin)
    out = []
    for i, (label, lo, hi) in enumerate(DENSITY_BINS):
        rows = table[bins == i]
        if rows.empty:
            continue
        out.append(
            {
                "bin": label,
                "ratio_range": [lo, hi if np.isfinite(hi) else None],
                "n_cells": int(rows["protocol"].nunique()),
                **group_entry(rows, f"{column}/{i}", seed),
            }
        )
    return out


def by_image_distance(table: pd.DataFrame, space: str, seed: int) -> list[dict]:
    column = f"distance_{space}"
    per_image = table.groupby("image_index")[column].first()
    bins, cuts = tertile_bins(per_image.to_numpy())
    bin_of = dict(zip(per_image.index, bins, strict=True))
    edges = [float(per_image.min()), *cuts, float(per_image.max())]
    out = []
    for i, label in enumerate(IMAGE_BINS):
        rows = table[table["image_index"].map(bin_of) == i]
        if rows.empty:
            continue
        out.append(
            {
                "bin": label,
                "distance_range": [edges[i], edges[i + 1]],
                **group_entry(rows, f"{column}/{i}", seed),
            }
        )
    return out


def by_position(summary_protocols: dict, cells: dict[str, Cell], densities: dict) -> dict:
    """Per size, one entry per cell: where it is and the engine's summary of its key."""
    out: dict[str, list] = {}
    for key, cell in cells.items():
        entry = summary_protocols.get(key)
        if not isinstance(entry, dict):
            continue
        centre = cell.centres.mean(axis=0)
        out.setdefault(str(cell.size), []).append(
            {
                "key": key,
                "x": cell.x,
                "y": cell.y,
                "width": cell.width,
                "height": cell.height,
                "centre": [float(centre[0]), float(centre[1])],
                **{f"density_ratio_{n}": float(d[key]) for n, d in densities.items()},
                **entry,
            }
        )
    return out


def read_per_image(run_dir) -> pd.DataFrame:
    """An audit folder's per-image table (`metrics.parquet`) as a DataFrame."""
    return read_metrics(run_dir).to_pandas()
