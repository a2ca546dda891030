"""bias.json statistics against plain-loop references, and the same boxes in every format
giving the same statistics."""

from __future__ import annotations

import math

import pytest
from bias_files import CLASSES, SIZES, known_boxes, write_all_formats

from jaggy.bias import run_bias
from jaggy.data.annotations import read_annotations


def _quantile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics, written out."""
    s = sorted(values)
    position = (len(s) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(s) - 1)
    return s[low] + (s[high] - s[low]) * (position - low)


def reference_statistics(boxes) -> dict:
    """Every statistic of bias.json by plain loops over the boxes."""
    cx, cy, size, aspect = [], [], [], []
    for b in boxes:
        w_img, h_img = SIZES[b.image]
        w, h = b.x1 - b.x0, b.y1 - b.y0
        cx.append((b.x0 + b.x1) / 2 / w_img)
        cy.append((b.y0 + b.y1) / 2 / h_img)
        size.append(math.sqrt(w * h / (w_img * h_img)))
        aspect.append(w / h)
    n = len(boxes)
    mean_x, mean_y = sum(cx) / n, sum(cy) / n
    std_x = math.sqrt(sum((v - mean_x) ** 2 for v in cx) / n)
    std_y = math.sqrt(sum((v - mean_y) ** 2 for v in cy) / n)
    middle = sum(
        1 for x, y in zip(cx, cy, strict=True) if 1 / 3 <= x <= 2 / 3 and 1 / 3 <= y <= 2 / 3
    )
    cells = {}
    for x, y in zip(cx, cy, strict=True):
        key = (min(int(y * 10), 9), min(int(x * 10), 9))
        cells[key] = cells.get(key, 0) + 1
    kl = sum(c / n * math.log(c / n / (1 / 100)) for c in cells.values())
    qs = (0.05, 0.25, 0.5, 0.75, 0.95)
    return {
        "n_boxes": n,
        "n_images": len({b.image for b in boxes}),
        "center_mean": [mean_x, mean_y],
        "center_std": [std_x, std_y],
        "size_mean": sum(size) / n,
        "size_quantiles": {f"{q:g}": _quantile(size, q) for q in qs},
        "aspect_quantiles": {f"{q:g}": _quantile(aspect, q) for q in qs},
        "frac_center_in_middle_third": middle / n,
        "center_kl_uniform": kl,
    }


def assert_close(actual, expected, tol=1e-9):
    if isinstance(expected, dict):
        assert set(actual) == set(expected)
        for key in expected:
            assert_close(actual[key], expected[key], tol)
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_close(a, e, tol)
    else:
        assert actual == pytest.approx(expected, rel=tol, abs=tol)


KEYS = tuple(reference_statistics(known_boxes(4)).keys())


def test_statistics_match_plain_loops(tmp_path):
    boxes = known_boxes(60, seed=3)
    paths = write_all_formats(tmp_path, boxes)
    result = run_bias(paths["coco"][0], tmp_path / "out", figures=False)
    stats = result.statistics
    assert_close({k: stats[k] for k in KEYS}, reference_statistics(boxes))
    for cls in CLASSES:
        mine = [b for b in boxes if b.cls == cls]
        assert_close({k: stats["per_class"][cls][k] for k in KEYS}, reference_statistics(mine))
    # the heat map's histogram holds every box
    assert sum(map(sum, stats["histograms"]["center_histogram"])) == len(boxes)
    assert sum(stats["histograms"]["size_histogram"]["counts"]) == len(boxes)


@pytest.mark.parametrize("fmt", ["voc", "imagenet-csv", "yolo"])
def test_same_boxes_in_every_format_give_the_same_statistics(tmp_path, fmt):
    boxes = known_boxes(40, seed=1)
    paths = write_all_formats(tmp_path, boxes)
    coco = run_bias(paths["coco"][0], tmp_path / "coco", figures=False).statistics
    path, images = paths[fmt]
    other = run_bias(path, tmp_path / fmt, images=images, figures=False).statistics
    assert other["format"] == fmt
    for key in (*KEYS, "histograms"):
        assert_close(other[key], coco[key])
    assert_close(other["per_class"], coco["per_class"])


def test_same_boxes_per_image_in_every_format(tmp_path):
    boxes = known_boxes(40, seed=2)
    paths = write_all_formats(tmp_path, boxes)
    expected = sorted((b.image, b.cls, b.x0, b.y0, b.x1, b.y1) for b in boxes)
    for fmt, (path, images) in paths.items():
        a = read_annotations(path, images=images)
        got = sorted(
            (
                a.image_ids[i] if "." in a.image_ids[i] else a.image_ids[i] + ".png",
                a.class_names[c],
                round(x0, 9),
                round(y0, 9),
                round(x1, 9),
                round(y1, 9),
            )
            for i, c, x0, y0, x1, y1 in zip(
                a.box_image, a.box_class, a.x0, a.y0, a.x1, a.y1, strict=True
            )
        )
        assert got == expected, fmt


def test_kl_is_zero_for_uniform_centres_and_log_cells_for_one_cell():
    import numpy as np

    from jaggy.bias._statistics import center_histogram, kl_from_uniform

    grid = (np.arange(10) + 0.5) / 10
    cx, cy = np.meshgrid(grid, grid)
    assert kl_from_uniform(center_histogram(cx.ravel(), cy.ravel())) == pytest.approx(0.0)
    assert kl_from_uniform(center_histogram(np.full(7, 0.5), np.full(7, 0.5))) == pytest.approx(
        math.log(100)
    )
