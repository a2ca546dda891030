"""Photographer's-bias statistics of a set of boxes (Azulay & Weiss, JMLR 2019, section 5:
objects in curated datasets sit near the centre at typical sizes).

Conventions: every quantity is in normalised coordinates of its frame (the image, or the
model's input window): the box centre (cx, cy) in [0, 1]^2, origin top-left, x right, y
down; `size` = sqrt(box area / frame area), in [0, 1]; `aspect` = box width / box height in
pixels. Quantiles use linear interpolation between order statistics (numpy's default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
CENTER_BINS = 10  # the centre histogram is CENTER_BINS x CENTER_BINS over the frame
SIZE_HIST_EDGES = np.linspace(0.0, 1.0, 21)
ASPECT_HIST_EDGES = 2.0 ** np.linspace(-3.0, 3.0, 25)  # 1/8 .. 8, log-spaced
# Binned values are rounded to this many decimals: formats that store normalised floats
# (YOLO) must put a box on the same side of a bin edge as formats that store pixels.
EDGE_DIGITS = 9


@dataclass
class BoxGeometry:
    """Per box, in normalised coordinates of one frame (see the module's conventions)."""

    cx: np.ndarray
    cy: np.ndarray
    size: np.ndarray
    aspect: np.ndarray

    @classmethod
    def from_corners(cls, x0, y0, x1, y1, frame_width, frame_height) -> BoxGeometry:
        w, h = x1 - x0, y1 - y0
        with np.errstate(divide="ignore", invalid="ignore"):  # boxes a crop leaves out: NaN
            return cls(
                cx=(x0 + x1) / 2.0 / frame_width,
                cy=(y0 + y1) / 2.0 / frame_height,
                size=np.sqrt(w * h / (frame_width * frame_height)),
                aspect=w / h,
            )

    def take(self, index) -> BoxGeometry:
        return BoxGeometry(self.cx[index], self.cy[index], self.size[index], self.aspect[index])

    def __len__(self) -> int:
        return len(self.cx)


def center_histogram(cx: np.ndarray, cy: np.ndarray, bins: int = CENTER_BINS) -> np.ndarray:
    """Counts [bins (rows, y down), bins (columns, x right)] of box centres over the frame;
    cell (i, j) holds centres with floor(cy * bins) = i and floor(cx * bins) = j (a centre on
    the far edge, 1.0, falls into the last cell). Positions are rounded to EDGE_DIGITS
    decimals first, so a centre on a cell edge stays on it after a round trip through text."""
    col = np.clip(np.floor(np.round(cx * bins, EDGE_DIGITS)).astype(np.int64), 0, bins - 1)
    row = np.clip(np.floor(np.round(cy * bins, EDGE_DIGITS)).astype(np.int64), 0, bins - 1)
    return np.bincount(row * bins + col, minlength=bins * bins).reshape(bins, bins)


def kl_from_uniform(counts: np.ndarray) -> float | None:
    """KL(p || uniform) in nats of a histogram: sum_i p_i log(p_i * n_cells), 0 log 0 = 0.
    0 for centres spread evenly, log(n_cells) when every centre is in one cell."""
    total = counts.sum()
    if total == 0:
        return None
    p = counts.ravel() / total
    p = p[p > 0]
    return float(np.sum(p * np.log(p * counts.size)))


def _quantiles(values: np.ndarray) -> dict[str, float] | None:
    if len(values) == 0:
        return None
    q = np.quantile(values, QUANTILES)
    return {f"{level:g}": float(v) for level, v in zip(QUANTILES, q, strict=True)}


def _pair(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


def frame_statistics(geometry: BoxGeometry, box_image: np.ndarray) -> dict:
    """The statistics of bias.json for one set of boxes (all of them, or one class's).

    Keys: n_images (images with a box in the set), n_boxes, center_mean and center_std
    ([x, y]; population std), size_mean, size_quantiles and aspect_quantiles ({level: value}),
    frac_center_in_middle_third (centre within [1/3, 2/3] on both axes, ends included), and
    center_kl_uniform (KL of the CENTER_BINS^2 centre histogram from uniform, nats).
    Values are None for an empty set.
    """
    n = len(geometry)
    if n == 0:
        return {
            "n_images": 0,
            "n_boxes": 0,
            "center_mean": None,
            "center_std": None,
            "size_mean": None,
            "size_quantiles": None,
            "aspect_quantiles": None,
            "frac_center_in_middle_third": None,
            "center_kl_uniform": None,
        }
    centers = np.stack([geometry.cx, geometry.cy])
    rounded = np.round(centers * 3, EDGE_DIGITS)
    middle = (rounded >= 1) & (rounded <= 2)
    return {
        "n_images": int(np.unique(box_image).size),
        "n_boxes": int(n),
        "center_mean": _pair(centers.mean(axis=1)),
        "center_std": _pair(centers.std(axis=1)),
        "size_mean": float(geometry.size.mean()),
        "size_quantiles": _quantiles(geometry.size),
        "aspect_quantiles": _quantiles(geometry.aspect),
        "frac_center_in_middle_third": float(np.mean(middle[0] & middle[1])),
        "center_kl_uniform": kl_from_uniform(center_histogram(geometry.cx, geometry.cy)),
    }


def histograms(geometry: BoxGeometry) -> dict:
    """What the figures and the report draw: the centre histogram (rows y, columns x), and
    the size and aspect histograms (aspects beyond 1/8 .. 8 counted in the end bins)."""
    aspect = np.clip(
        np.round(geometry.aspect, EDGE_DIGITS), ASPECT_HIST_EDGES[0], ASPECT_HIST_EDGES[-1]
    )
    return {
        "center_histogram": center_histogram(geometry.cx, geometry.cy).tolist(),
        "size_histogram": {
            "edges": SIZE_HIST_EDGES.tolist(),
            "counts": np.histogram(np.round(geometry.size, EDGE_DIGITS), SIZE_HIST_EDGES)[
                0
            ].tolist(),
        },
        "aspect_histogram": {
            "edges": ASPECT_HIST_EDGES.tolist(),
            "counts": np.histogram(aspect, ASPECT_HIST_EDGES)[0].tolist(),
        },
    }


def per_class_statistics(
    geometry: BoxGeometry, box_image: np.ndarray, box_class: np.ndarray, class_names: list[str]
) -> dict[str, dict]:
    """`frame_statistics` of each class that has a box, largest class first (ties by name)."""
    order = np.argsort(box_class, kind="stable")
    counts = np.bincount(box_class, minlength=len(class_names))
    starts = np.concatenate([[0], np.cumsum(counts)])
    present = [c for c in range(len(class_names)) if counts[c]]
    present.sort(key=lambda c: (-counts[c], class_names[c]))
    out = {}
    for c in present:
        index = order[starts[c] : starts[c + 1]]
        out[class_names[c]] = frame_statistics(geometry.take(index), box_image[index])
    return out
