"""The HTML report, rendered in a real headless Chromium (skipped when it is not installed)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from report_fixtures import (
    XSS_NAME,
    chromium,
    load_original,
    make_run,
    probe_page,
    screenshot,
    write_images,
)

from jaggy.report import write_report


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    """A run with shift, embed (two sizes) and scale protocols over images that include a
    hostile file name and an unreadable file (skipped)."""
    root = tmp_path_factory.mktemp("full")
    data = root / "images"
    write_images(data, 5, names=[XSS_NAME])
    (data / "broken.png").write_bytes(b"this is not a PNG")
    return make_run(root / "run", data, ["crop", "black", "inpaint", "scale"], sizes=(20, 24))


@pytest.fixture(scope="module")
def full_report(full_run: Path, tmp_path_factory) -> Path:
    return write_report([full_run], tmp_path_factory.mktemp("html") / "report.html")


@pytest.fixture(scope="module")
def probed(full_report: Path, tmp_path_factory) -> dict:
    chromium()
    return probe_page(full_report, tmp_path_factory.mktemp("probe"))


def test_page_loads_without_console_errors(probed, full_report, tmp_path):
    assert probed["errors"] == []
    assert probed["console"] == []
    assert probed["alerts"] == []
    dom, console = load_original(full_report, tmp_path)
    assert console == [], console
    assert 'id="headline"' in dom


def test_every_image_decodes(probed):
    assert probed["svg_images"], "the report should embed views and walls"
    assert all(width > 0 for width in probed["svg_images"])
    assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in probed["images"])
    assert probed["svgs"] >= 10


def test_sections_present_in_the_data_appear(probed, full_run):
    summary = json.loads((full_run / "summary.json").read_text())
    keys = list(summary["protocols"])
    assert keys == ["crop", "black@20", "black@24", "inpaint@20", "inpaint@24", "scale"]
    assert probed["sections"] == ["headline", "curves", "wall", "scale", "manifest"]
    assert sorted(probed["curves"]) == sorted(keys)
    assert sorted(probed["walls"]) == sorted(keys)


def test_page_is_self_contained(full_report):
    text = full_report.read_text()
    assert "<script" not in text
    # No URL the browser would fetch: only data: URIs and in-page anchors.
    for match in re.finditer(r'(?:src|href)="([^"]*)"', text):
        assert match.group(1).startswith(("data:", "#")), match.group(1)
    assert "@import" not in text
    # CSS url() only for in-page references (the figures' clip paths)
    for match in re.finditer(r"url\(([^)]*)\)", text):
        assert match.group(1).startswith("#"), match.group(0)
    all_ids = re.findall(r' id="([^"]+)"', text)
    ids = set(all_ids)
    assert len(ids) == len(all_ids), "ids must be unique in the page (many inline SVGs)"
    for target in re.findall(r'href="#([^"]+)"', text) + re.findall(r"url\(#([^)]+)\)", text):
        assert target in ids, f"reference to a missing id #{target}"


def test_hostile_file_name_shows_as_text(probed, full_report):
    assert probed["with_onerror"] == 0
    assert probed["img_src_x"] == 0
    assert probed["alerts"] == []
    assert XSS_NAME in probed["text"]  # shown, as text
    source = full_report.read_text()
    assert "<img src=x" not in source
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in source


def test_skipped_input_listed_with_reason(probed):
    text = probed["text"]
    assert "broken.png" in text
    assert "unreadable image" in text


def test_screenshot(full_report, tmp_path):
    chromium()
    png = screenshot(full_report, tmp_path / "report.png", tmp_path)
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (1280, 2400)
        # a real page: many distinct colours, not a blank or error screen
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is None or len(colours) > 200


def test_only_the_run_protocols_appear(tmp_path):
    chromium()
    data = tmp_path / "images"
    write_images(data, 3, seed=3)
    run = make_run(tmp_path / "run", data, ["crop"])
    html = write_report([run], tmp_path / "report.html")
    result = probe_page(html, tmp_path / "probe")
    assert result["curves"] == ["crop"]
    assert result["walls"] == ["crop"]
    assert "scale" not in result["sections"]  # no embed sizes, no scale protocol
    assert "comparison" not in result["sections"]  # one run
    assert result["errors"] == [] and result["console"] == []
    assert all(w > 0 for w in result["svg_images"])


def test_two_runs_compared_with_winner_marked(tmp_path):
    chromium()
    data = tmp_path / "images"
    write_images(data, 4, seed=5)
    a = make_run(tmp_path / "a", data, ["crop", "black"])
    b = make_run(tmp_path / "b", data, ["crop"], model="py:report_fixtures:tiny_model_b")
    html = write_report([a, b], tmp_path / "report.html")
    result = probe_page(html, tmp_path / "probe")
    assert "comparison" in result["sections"]
    assert result["wins"] >= 1
    # both runs' black@24 is only in run a: its curves and wall are still shown
    assert "black@24" in result["curves"]
    assert result["errors"] == [] and result["console"] == []


def test_missing_source_image_is_skipped_gracefully(tmp_path):
    chromium()
    data = tmp_path / "images"
    write_images(data, 3, seed=7)
    run = make_run(tmp_path / "run", data, ["crop"])
    shutil.rmtree(data)
    # The views the audit stored are still shown; without them (a run of an older version)
    # the page says why there are none.
    assert "no longer where" not in write_report([run], tmp_path / "stored.html").read_text()
    shutil.rmtree(Path(run) / "thumbnails")
    html = write_report([run], tmp_path / "report.html")
    text = html.read_text()
    assert "no longer where the run found it" in text
    result = probe_page(html, tmp_path / "probe")
    assert result["curves"] == ["crop"]
    assert result["errors"] == []


def test_layers_and_compare_folders_render(tmp_path):
    chromium()
    from PIL import Image

    layers = tmp_path / "layers"
    layers.mkdir()
    (layers / "layers.json").write_text(
        json.dumps(
            {
                "model": "py:tiny:<net>",
                "total_stride": 2,
                "shifts": [{"index": k, "dx": float(k), "dy": float(k)} for k in range(4)],
                "layers": [
                    {
                        "name": "conv<1>",
                        "kind": "conv",
                        "stride": 2,
                        "cumulative_stride": 2,
                        "out_shape": [8, 16, 16],
                        "equivariance_error": [0.0, 0.4, 0.0, 0.4],
                        "aliasing_energy": 0.3,
                    }
                ],
            }
        )
    )
    Image.new("RGB", (60, 40), (20, 120, 200)).save(layers / "feature_maps.png")
    compare = tmp_path / "compare"
    compare.mkdir()
    entry = {"value": 0.2, "ci95": [0.1, 0.3]}
    (compare / "compare.json").write_text(
        json.dumps(
            {
                "variants": [
                    {
                        "variant": "base",
                        "ms_per_image": 1.0,
                        "params": 10,
                        "protocols": {"crop": {"p_top1_change": entry}},
                    },
                    {
                        "variant": "aps",
                        "ms_per_image": 1.5,
                        "params": 10,
                        "protocols": {"crop": {"p_top1_change": {**entry, "value": 0.1}}},
                    },
                ]
            }
        )
    )
    html = write_report([layers, compare], tmp_path / "report.html")
    result = probe_page(html, tmp_path / "probe")
    assert result["sections"] == ["layers", "compare"]
    assert len(result["images"]) == 1 and result["images"][0]["w"] == 60
    assert result["errors"] == [] and result["console"] == [] and result["alerts"] == []
    assert "conv<1>" in result["text"]
