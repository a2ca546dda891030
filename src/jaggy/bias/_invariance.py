"""Partial invariance: an audit run's per-image metrics by object size and by the object's
distance from the image centre, and the metrics expected under the dataset's own
position/size distribution versus a uniform one (Azulay & Weiss, JMLR 2019, section 5: the
network is more invariant where the training data put its objects).

Join: a metrics row of a `bbox` run names its object (`image#k`: the k-th kept box of the
image, boxes.parquet's `object_index`); a row of any other run names an image, and stands for
that image's largest box (the main object, as in ImageNet's localisation labels). Image ids
match exactly, else by file name without extension (`ILSVRC2012_val_00000001` matches
`n01440764/ILSVRC2012_val_00000001.JPEG`).

Geometry (the image frame): size = sqrt(box area / image area); distance = |box centre -
image centre| / |corner - centre| in normalised coordinates, 0 at the centre, 1 at a corner.

Reweighting: objects fall into cells (size bin x distance bin). Under the dataset's own
distribution each cell weighs its share of the objects, so the expected value is the plain
mean. Under the uniform one, centres are uniform over the image and sizes uniform over
[0, 1], independently: a cell weighs (its size bin's width) x (the share of the image's area
at its distances). Cells without objects cannot be estimated: the uniform value is the
weighted mean over the cells that have objects, and `uniform_coverage` is the weight those
cells carry (1 when every cell has an object). CIs are percentile bootstraps stratified by
cell (each resample keeps every cell's number of objects and draws its values with
replacement), one set of resamples per protocol and metric for all its bins and estimates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.annotations import Annotations
from ..data.annotations._objects import split_object_id
from ..errors import DataError
from ..results._metrics_table import metric_columns

SIZE_EDGES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
DISTANCE_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 1.0)
N_RESAMPLES = 1000


def object_geometry(annotations: Annotations) -> tuple[np.ndarray, np.ndarray]:
    """Per box: (size, distance from the image centre), see the module's conventions."""
    a = annotations
    w, h = a.image_width[a.box_image], a.image_height[a.box_image]
    size = np.sqrt((a.x1 - a.x0) * (a.y1 - a.y0) / (w * h))
    cx, cy = (a.x0 + a.x1) / 2 / w, (a.y0 + a.y1) / 2 / h
    distance = np.hypot(cx - 0.5, cy - 0.5) / np.sqrt(0.5)
    return size, distance


def match_rows(image_ids: list[str], annotations: Annotations) -> np.ndarray:
    """Per metrics row, the index of its box in `annotations` (-1: no match)."""
    a = annotations
    by_id = {image_id: i for i, image_id in enumerate(a.image_ids)}
    by_stem: dict[str, int] = {}
    ambiguous = set()
    for i, image_id in enumerate(a.image_ids):
        stem = _stem(image_id)
        if stem in by_stem:
            ambiguous.add(stem)
        by_stem[stem] = i
    for stem in ambiguous:
        del by_stem[stem]
    object_index = a.object_indices()
    box_of_object = {
        (int(i), int(k)): b for b, (i, k) in enumerate(zip(a.box_image, object_index, strict=True))
    }
    area = (a.x1 - a.x0) * (a.y1 - a.y0)
    largest = np.full(len(a.image_ids), -1, dtype=np.int64)
    order = np.lexsort((-np.arange(len(area)), area))  # ascending area, first box wins ties
    largest[a.box_image[order]] = order

    def image_of(image_id: str) -> int | None:
        found = by_id.get(image_id)
        return found if found is not None else by_stem.get(_stem(image_id))

    out = np.full(len(image_ids), -1, dtype=np.int64)
    for r, text in enumerate(image_ids):
        parts = split_object_id(text)
        if parts is not None:
            image = image_of(parts[0])
            if image is not None:
                out[r] = box_of_object.get((image, parts[1]), -1)
            continue
        image = image_of(text)
        if image is not None:
            out[r] = largest[image]
    return out


def _stem(image_id: str) -> str:
    name = image_id.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def uniform_cell_weights(
    size_edges=SIZE_EDGES, distance_edges=DISTANCE_EDGES, grid: int = 2000
) -> np.ndarray:
    """[size bins, distance bins] weights of the uniform distribution (sum 1): size bin width
    times the share of the unit square whose distance from its centre falls in the bin
    (integrated on a grid x grid midpoint lattice)."""
    u = (np.arange(grid) + 0.5) / grid
    d = np.hypot(u[:, None] - 0.5, u[None, :] - 0.5).ravel() / np.sqrt(0.5)
    area = np.histogram(d, np.asarray(distance_edges))[0] / d.size
    width = np.diff(np.asarray(size_edges))
    return width[:, None] * area[None, :] / width.sum()


def _bin(values: np.ndarray, edges) -> np.ndarray:
    """Bin index of each value (the last bin includes its upper edge)."""
    return np.clip(np.searchsorted(np.asarray(edges), values, side="right") - 1, 0, len(edges) - 2)


def cell_resamples(
    values: np.ndarray, cells: np.ndarray, n_cells: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bootstrap stratified by cell: each resample draws, within every cell, as many of the
    cell's finite values as it has, with replacement.

    Returns (sums [N_RESAMPLES, n_cells]: per resample and cell the sum of the drawn values;
    n [n_cells]: values per cell; totals [n_cells]: the sum of each cell's values). Every
    estimate here (bin means, the dataset's mean, the reweighted mean) is a function of
    per-cell sums, so one set of resamples serves them all.
    """
    finite = np.isfinite(values)
    v, c = values[finite], cells[finite]
    order = np.argsort(c, kind="stable")
    v, c = v[order], c[order]
    n = np.bincount(c, minlength=n_cells)
    totals = np.bincount(c, weights=v, minlength=n_cells)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    present = np.flatnonzero(n)
    sums = np.zeros((N_RESAMPLES, n_cells))
    if v.size:
        row_start, row_size = starts[c], n[c]
        rng = np.random.default_rng(seed)
        block = max(1, 4_000_000 // v.size)  # bounds the memory of one block of draws
        for first in range(0, N_RESAMPLES, block):
            last = min(first + block, N_RESAMPLES)
            draws = row_start + (rng.random((last - first, v.size)) * row_size).astype(np.int64)
            sums[first:last, present] = np.add.reduceat(v[draws], starts[present], axis=1)
    return sums, n.astype(np.float64), totals


def _ci(resampled: np.ndarray) -> list[float | None]:
    resampled = resampled[np.isfinite(resampled)]
    if resampled.size == 0:
        return [None, None]
    lo, hi = np.quantile(resampled, [0.025, 0.975])
    return [float(lo), float(hi)]


def binned(resamples, group_of_cell: np.ndarray, n_groups: int) -> list[dict]:
    """Per group of cells (a size bin or a distance bin): the mean of its values, its
    bootstrap 95% CI and n."""
    sums, n, totals = resamples
    members = np.zeros((n.size, n_groups))
    members[np.arange(n.size), group_of_cell] = 1.0
    group_n, group_total, group_sums = n @ members, totals @ members, sums @ members
    out = []
    for g in range(n_groups):
        if group_n[g] == 0:
            out.append({"value": None, "ci95": [None, None], "n": 0})
            continue
        out.append(
            {
                "value": float(group_total[g] / group_n[g]),
                "ci95": _ci(group_sums[:, g] / group_n[g]),
                "n": int(group_n[g]),
            }
        )
    return out


def reweighted(resamples, weights: np.ndarray) -> dict:
    """Expected value under the dataset's distribution (the mean) and under `weights` over
    cells (see the module's conventions), each with a bootstrap 95% CI, and the uniform
    weight of the cells that have values."""
    sums, n, totals = resamples
    flat = weights.ravel()
    covered = n > 0
    if not covered.any():
        empty = {"value": None, "ci95": [None, None]}
        return {"dataset": empty, "uniform": dict(empty), "uniform_coverage": 0.0}
    mass = float(flat[covered].sum())
    q = flat[covered] / mass
    return {
        "dataset": {"value": float(totals.sum() / n.sum()), "ci95": _ci(sums.sum(1) / n.sum())},
        "uniform": {
            "value": float(q @ (totals[covered] / n[covered])),
            "ci95": _ci((sums[:, covered] / n[covered]) @ q),
        },
        "uniform_coverage": mass,
    }


def invariance_by_object(
    table, annotations: Annotations, *, run: str | Path = "", seed: int = 0
) -> tuple[dict, dict]:
    """bias.json's `invariance` and the joined rows (columns) from a metrics table (a
    pyarrow Table with metrics.parquet's columns) and the annotations."""
    names = table.column_names
    for needed in ("image_id", "protocol"):
        if needed not in names:
            raise DataError(f"{run}: metrics.parquet has no '{needed}' column")
    metrics = [c for c in metric_columns(table) if table.schema.field(c).type in _FLOATS]
    image_ids = table.column("image_id").to_pylist()
    protocols = table.column("protocol").to_pylist()
    box = match_rows(image_ids, annotations)
    size_all, distance_all = object_geometry(annotations)
    matched = box >= 0
    if not matched.any():
        raise DataError(
            f"no image of the run {run} is in the annotations (ids such as "
            f"{image_ids[0] if image_ids else '-'!r} versus {annotations.image_ids[0]!r}); "
            "give the annotations of the images that run audited"
        )
    size = np.where(matched, size_all[np.maximum(box, 0)], np.nan)
    distance = np.where(matched, distance_all[np.maximum(box, 0)], np.nan)
    size_bin, distance_bin = _bin(size, SIZE_EDGES), _bin(distance, DISTANCE_EDGES)
    n_size, n_distance = len(SIZE_EDGES) - 1, len(DISTANCE_EDGES) - 1
    cell = size_bin * n_distance + distance_bin
    weights = uniform_cell_weights()
    values = {
        m: np.asarray(table.column(m).to_numpy(zero_copy_only=False), dtype=np.float64)
        for m in metrics
    }
    protocol_array = np.asarray(protocols, dtype=object)
    by_size, by_position, reweights, counts = {}, {}, {}, {}
    for key in dict.fromkeys(protocols):
        rows = matched & (protocol_array == key)
        counts[key] = {"rows": int((protocol_array == key).sum()), "matched": int(rows.sum())}
        if not rows.any():
            continue
        size_of_cell = np.arange(weights.size) // n_distance
        distance_of_cell = np.arange(weights.size) % n_distance
        resamples = {
            m: cell_resamples(values[m][rows], cell[rows], weights.size, seed) for m in metrics
        }
        by_size[key] = {
            "edges": list(SIZE_EDGES),
            "n": np.bincount(size_bin[rows], minlength=n_size).tolist(),
            "metrics": {m: binned(resamples[m], size_of_cell, n_size) for m in metrics},
        }
        by_position[key] = {
            "edges": list(DISTANCE_EDGES),
            "n": np.bincount(distance_bin[rows], minlength=n_distance).tolist(),
            "metrics": {m: binned(resamples[m], distance_of_cell, n_distance) for m in metrics},
        }
        reweights[key] = {m: reweighted(resamples[m], weights) for m in metrics}
    bbox_rows = sum(split_object_id(i) is not None for i in image_ids)
    summary = {
        "run": str(run),
        "object": "the audited object (a bbox run)"
        if bbox_rows == len(image_ids)
        else "the largest box of its image",
        "rows": counts,
        "unmatched_rows": int((~matched).sum()),
        "metrics": metrics,
        "size_edges": list(SIZE_EDGES),
        "distance_edges": list(DISTANCE_EDGES),
        "uniform_cell_weights": weights.tolist(),
        "by_size": by_size,
        "by_position": by_position,
        "reweighted": reweights,
    }
    joined = {
        "image_id": image_ids,
        "protocol": protocols,
        "box_index": box,
        "size": size,
        "distance": distance,
        "size_bin": np.where(matched, size_bin, -1),
        "distance_bin": np.where(matched, distance_bin, -1),
        **values,
    }
    return summary, joined


def _float_types():
    import pyarrow as pa

    return {pa.float64(), pa.float32()}


_FLOATS = _float_types()
