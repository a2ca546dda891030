"""One PNG of P(c*) versus shift per image, streamed from a real run through jaggy.results."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from PIL import Image
from report_fixtures import make_run, write_images

from jaggy.figures import _parallel
from jaggy.report import _curve_pngs as curve_pngs
from jaggy.report._curve_pngs import write_shift_curve_pngs
from jaggy.results import iter_sequences


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pngs")
    write_images(root / "images", 3, seed=9, names=["<img0>.png"])
    return make_run(root / "run", root / "images", ["crop", "black"], steps=3)


@pytest.mark.parametrize("batch_rows", [5, 65_536])
def test_one_png_per_image_with_every_sequence(run_dir, tmp_path, monkeypatch, batch_rows):
    # small batches: each image's sequences arrive over several reads, and are drawn once
    monkeypatch.setattr(
        curve_pngs, "iter_sequences", functools.partial(iter_sequences, batch_size=batch_rows)
    )
    drawn = []
    real = curve_pngs.shift_curves_png

    def spy(curves, title):
        drawn.append((title, [(c.label, len(c.views)) for c in curves]))
        return real(curves, title)

    monkeypatch.setattr(curve_pngs, "shift_curves_png", spy)
    monkeypatch.setattr(_parallel, "MAX_WORKERS", 1)  # drawn here, where the spy sees them
    paths = write_shift_curve_pngs(run_dir, tmp_path / "figs", [f"name{i}" for i in range(10)])
    assert [p.name for p in paths] == [
        "00000-img0_.png.png",
        "00001-img001.png.png",
        "00002-img002.png.png",
    ]
    # every image: one curve per protocol key, all its views, each naming its own c*
    assert [title for title, _ in drawn] == ["<img0>.png", "img001.png", "img002.png"]
    for _, curves in drawn:
        assert [label.split(" · ")[0] for label, _ in curves] == ["crop", "black@24"]
        assert all(n == 3 for _, n in curves)
        assert all("c* = name" in label for label, _ in curves)
    with Image.open(paths[0]) as image:
        assert image.width > 300


def test_caps_images(run_dir, tmp_path):
    paths = write_shift_curve_pngs(run_dir, tmp_path / "figs", max_images=2)
    assert [p.name[:5] for p in paths] == ["00000", "00001"]


def test_pngs_drawn_in_workers_are_those_drawn_here(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(curve_pngs, "BATCH", 2)  # batches drawn while the file is still read
    spread = write_shift_curve_pngs(run_dir, tmp_path / "spread")
    monkeypatch.setattr(_parallel, "MAX_WORKERS", 1)
    here = write_shift_curve_pngs(run_dir, tmp_path / "here")
    assert [p.name for p in spread] == [p.name for p in here]
    assert [p.read_bytes() for p in spread] == [p.read_bytes() for p in here]
