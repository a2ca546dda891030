"""How typical an evaluation image or position is of what a network was trained on.

- Image typicality: the mean Euclidean distance from an image to its k nearest training
  images, in pixel space or in the network's feature space (the input of its classifier).
  Small distance = typical.
- Position typicality: the density of the training positions (object centres) at a point,
  estimated by a 2-D histogram with square bins of `bin_px` px over the R x R canvas, in
  training objects per px^2 (so a uniform spread over the canvas has density 1 / R^2).

Conventions: points are (x, y) in px, x right, y down; histogram arrays are indexed
[y_bin, x_bin]; bin b covers [b * bin_px, (b + 1) * bin_px), the last bin is closed at R and
is narrower when bin_px does not divide R.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models._head import classifier_layer


def knn_distance(
    queries: np.ndarray | torch.Tensor,
    references: np.ndarray | torch.Tensor,
    k: int,
    *,
    block: int = 512,
) -> np.ndarray:
    """Mean distance from each query [N, D] to its k nearest references [M, D] (Euclidean,
    float64). k must not exceed M."""
    q = torch.as_tensor(np.asarray(queries), dtype=torch.float64).flatten(1)
    r = torch.as_tensor(np.asarray(references), dtype=torch.float64).flatten(1)
    if not 1 <= k <= len(r):
        raise ValueError(f"k must be between 1 and the {len(r)} references (got {k})")
    out = []
    for start in range(0, len(q), block):
        d = torch.cdist(q[start : start + block], r)
        out.append(d.topk(k, dim=1, largest=False).values.mean(dim=1))
    return torch.cat(out).numpy() if out else np.zeros(0)


def bin_edges(canvas: int, bin_px: int) -> np.ndarray:
    """Histogram bin edges 0, bin_px, 2 bin_px, ..., canvas (the last bin may be narrower)."""
    edges = list(range(0, canvas, bin_px)) + [canvas]
    return np.array(edges, dtype=np.float64)


def position_histogram(centres: np.ndarray, canvas: int, bin_px: int) -> np.ndarray:
    """Counts [n_bins_y, n_bins_x] of training centres (points outside the canvas are
    dropped; a point on the far edge R counts in the last bin)."""
    edges = bin_edges(canvas, bin_px)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    counts, _, _ = np.histogram2d(centres[:, 1], centres[:, 0], bins=[edges, edges])
    return counts.astype(np.int64)


def position_density(counts: np.ndarray, canvas: int, bin_px: int) -> np.ndarray:
    """Density [n_bins_y, n_bins_x] in training objects per px^2 (fractions of all counted
    centres, divided by each bin's area)."""
    widths = np.diff(bin_edges(canvas, bin_px))
    total = counts.sum()
    if total == 0:
        return np.zeros(counts.shape)
    return counts / total / np.outer(widths, widths)


def density_at(density: np.ndarray, canvas: int, bin_px: int, points: np.ndarray) -> np.ndarray:
    """The histogram density at each point [N, 2] (x, y) in px."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    last = density.shape[0] - 1
    bx = np.clip(np.floor(points[:, 0] / bin_px).astype(np.int64), 0, last)
    by = np.clip(np.floor(points[:, 1] / bin_px).astype(np.int64), 0, last)
    return density[by, bx]


@torch.inference_mode()
def penultimate_features(
    module: nn.Module, images: torch.Tensor, *, batch_size: int = 256
) -> torch.Tensor:
    """The input of the model's final linear classifier for each image (flattened), float64:
    the network's own feature space."""
    _, _, layer = classifier_layer(module)
    captured: list[torch.Tensor] = []

    def hook(_module, inputs, _output):
        captured.append(inputs[0].detach().flatten(1).to(torch.float64).cpu())

    handle = layer.register_forward_hook(hook)
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    try:
        for start in range(0, len(images), batch_size):
            module(images[start : start + batch_size].to(device))
    finally:
        handle.remove()
        module.train(was_training)
    return torch.cat(captured) if captured else torch.zeros(0)


def tertile_bins(values: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Bin index 0 / 1 / 2 (nearest third, middle, farthest) per value, and the two cut
    points (values at the 1/3 and 2/3 quantiles; a value equal to a cut goes below it)."""
    values = np.asarray(values, dtype=np.float64)
    cuts = [float(c) for c in np.quantile(values, [1 / 3, 2 / 3])]
    return np.searchsorted(cuts, values, side="left").astype(np.int64), cuts
