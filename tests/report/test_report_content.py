"""What the report computes and shows, checked without a browser: statistics against the
summary, re-created views against the model's own predictions, caps, optional sections,
escaping, the registry and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from markupsafe import Markup
from PIL import Image
from report_fixtures import XSS_NAME, make_run, tiny_model, write_images

from jaggy.cli import main
from jaggy.errors import ArgumentError, DataError
from jaggy.report import ReportLimits, render_report, write_report
from jaggy.report._data import RunMetrics, read_views, spread_pick
from jaggy.report._registry import has_file, list_sections, register_section
from jaggy.report._report import Report
from jaggy.report._run import RunFolder
from jaggy.report._templates import render_template, slug
from jaggy.report._views import ViewMaker
from jaggy.report.sections.curves import image_metrics
from jaggy.results import read_metrics


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("content")
    data = root / "images"
    write_images(data, 6, seed=11)
    return make_run(root / "run", data, ["crop", "black", "scale"], sizes=(20, 24), steps=5)


def _sections(html: str) -> list[str]:
    return re.findall(r'<section class="report" id="([^"]+)"', html)


# --- statistics: every per-image number comes from metrics.parquet ----------------------


def test_per_image_statistics_equal_metrics_parquet(run_dir):
    table = read_metrics(run_dir).to_pandas()
    html = render_report([run_dir])
    for key, group in table.groupby("protocol", sort=False):
        # the wall: sorted by metrics.parquet's jaggedness, each row titled with its values
        expected = group.sort_values(
            ["jaggedness", "p_top1_change", "image_index"], ascending=[False, False, True]
        )
        wall = html.split(f'id="wall-{slug(key)}"')[1].split("</section>")[0]
        titles = re.findall(r"<title>([^<]*): c\* = [^<]*</title>", wall)
        assert titles == expected.image_id.tolist()
        for row in expected.itertuples():
            assert (
                f"jaggedness {row.jaggedness:.3f}; P(top-1 change) {row.p_top1_change:.3f}" in wall
            )
    # the cards: the metrics of each drawn image under each key, as the table holds them
    report = Report([RunFolder(run_dir)], ReportLimits())
    run = report.runs[0]
    for index in report.curve_images(run):
        for key in report.protocol_keys(run):
            row = table[(table.protocol == key) & (table.image_index == index)].iloc[0]
            shown = dict(image_metrics(report, run, key, index))
            assert shown["P(top-1 change)"] == f"{row.p_top1_change:.3f}"
            assert shown["jaggedness"] == f"{row.jaggedness:.3f}"
            assert shown["MAC"] == f"{row.mac:.3f}"


def test_curve_images_are_the_most_unstable_by_the_metrics(run_dir):
    table = read_metrics(run_dir).to_pandas()
    score = (
        (table.p_top1_change.fillna(0) + table.jaggedness.fillna(0))
        .groupby(table.image_index)
        .mean()
    )
    expected = sorted(score.index, key=lambda i: (-score[i], i))[:3]
    report = Report([RunFolder(run_dir)], ReportLimits(curve_images=3))
    assert report.curve_images(report.runs[0]) == expected


def test_report_and_figures_compute_no_metric_and_read_files_through_results():
    import ast

    import jaggy

    root = Path(jaggy.__file__).parent
    allowed_from_metrics = {"metric_info", "list_metrics", "MetricInfo"}
    for folder in ("report", "figures"):
        for path in (root / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                    assert not any(n.startswith("pyarrow.parquet") for n in names), path
                elif isinstance(node, ast.ImportFrom):
                    module = node.module or ""
                    assert not module.startswith("pyarrow.parquet"), path
                    if module.endswith("metrics"):
                        imported = {a.name for a in node.names}
                        assert imported <= allowed_from_metrics, (path, imported)


def test_per_view_means_match_the_rows(run_dir):
    views, _ = read_views(run_dir, {})
    table = pq.read_table(run_dir / "predictions.parquet").to_pandas()
    crop = table[table.protocol == "crop"]
    expected = crop.groupby("view").p_ref.mean().to_numpy()
    np.testing.assert_allclose(views["crop"].mean_p_by_view(), expected, rtol=1e-6)
    correct = (crop.top5_ids.map(lambda ids: ids[0]) == crop.ref_class).groupby(crop.view).mean()
    np.testing.assert_allclose(views["crop"].correct_by_view(), correct.to_numpy())
    xs, label = views["scale"].x_values()
    assert label.startswith("embedded size")
    assert xs.tolist() == [20, 21, 22, 23, 24]


def test_wall_order_is_by_jaggedness(run_dir):
    metrics = RunMetrics(read_metrics(run_dir))
    for key in metrics.keys():
        order = metrics.wall_order(key)
        assert sorted(order.tolist()) == metrics.images(key).tolist()
        jag = metrics.column(key, "jaggedness", order)
        assert np.all(np.diff(jag) <= 1e-12)  # most jagged first


def test_spread_pick_spans_the_ranking():
    picked = spread_pick(np.arange(100), 5)
    assert picked.tolist() == [0, 25, 50, 74, 99]
    assert spread_pick(np.arange(3), 5).tolist() == [0, 1, 2]


def test_details_hold_the_exact_rows(run_dir):
    _, details = read_views(run_dir, {"crop": {1}, "scale": {0, 2}})
    assert set(details) == {("crop", 1), ("scale", 0), ("scale", 2)}
    table = pq.read_table(run_dir / "predictions.parquet").to_pandas()
    rows = table[(table.protocol == "scale") & (table.image_index == 2)].sort_values("view")
    seq = details[("scale", 2)]
    np.testing.assert_allclose(seq.p_ref, rows.p_ref.to_numpy(), rtol=1e-6)
    assert seq.top1.tolist() == rows.top5_ids.map(lambda ids: int(ids[0])).tolist()
    assert seq.ref_class == int(rows.ref_class.iloc[0])
    assert seq.image_id == rows.image_id.iloc[0]


# --- re-created views ---------------------------------------------------------------------


def test_recreated_views_are_what_the_model_saw(run_dir):
    """Run the same model on the re-created views: P(c*) equals the recorded p_ref."""
    maker = ViewMaker(RunFolder(run_dir))
    assert maker.problem is None
    model = tiny_model().eval()
    prep = maker.preprocessing
    table = pq.read_table(run_dir / "predictions.parquet").to_pandas()
    for key in ("crop", "black@20", "scale"):
        rows = table[(table.protocol == key) & (table.image_index == 3)].sort_values("view")
        views = maker.view_pixels(rows.image_id.iloc[0], key, rows.view.tolist())
        assert not isinstance(views, str), views
        batch = torch.stack([torch.from_numpy(v).permute(2, 0, 1) for v in views])
        with torch.inference_mode():
            probs = model(prep.normalize(batch)).softmax(dim=1)
        ref = torch.tensor(rows.ref_class.to_numpy().copy())
        recomputed = probs[torch.arange(len(ref)), ref].numpy()
        # views pass through uint8 for display: allow that quantisation
        np.testing.assert_allclose(recomputed, rows.p_ref.to_numpy(), atol=2e-3)


def test_crop_view_matches_an_independent_crop(run_dir):
    maker = ViewMaker(RunFolder(run_dir))
    image_id = "img002.png"
    side = 32 + 5  # R + steps
    source = Image.open(Path(maker.config["data"]) / image_id).convert("RGB")
    w, h = source.size
    s = min(w, h)
    square = source.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    big = np.asarray(square.resize((side, side), Image.Resampling.BILINEAR))
    views = maker.view_pixels(image_id, "crop", [0, 3])
    # diagonal path centred in the resized image: origin (side - R - span) // 2 = 0
    for view, k in zip(views, [0, 3], strict=True):
        expected = big[k : k + 32, k : k + 32]
        assert np.abs(view.astype(int) - expected.astype(int)).max() <= 1


def test_missing_file_and_unknown_protocol_give_reasons(run_dir):
    maker = ViewMaker(RunFolder(run_dir))
    assert "no longer" in maker.thumbnails("not-there.png", "crop", [0])
    assert "not in the run" in maker.thumbnails("img000.png", "nope", [0])
    thumbs = maker.thumbnails("img000.png", "crop", [0, 4])
    assert len(thumbs) == 2 and all(t.shape == (64, 64, 3) and t.dtype == np.uint8 for t in thumbs)


# --- the page -----------------------------------------------------------------------------


def test_caps_limit_what_is_drawn_and_say_so(run_dir):
    html = render_report([run_dir], ReportLimits(wall_images=4, curve_images=2, thumbnails=3))
    rows = [int(r) for r in re.findall(r'data-rows="(\d+)"', html)]
    assert rows and all(r == 4 for r in rows)
    assert "at most 4 images" in html
    assert "4 of 6 images" in html
    assert "the 2 images (of 6)" in html
    # 2 curve images x 4 protocols (crop, black@20, black@24, scale), 3 thumbnails each
    assert html.count("data:image/jpeg;base64,") == 2 * 4 * 3


def test_run_with_labels_shows_accuracy(tmp_path):
    data = tmp_path / "images"
    write_images(data, 3, seed=2)
    (tmp_path / "labels.csv").write_text("\n".join(f"img{i:03d}.png,{i % 10}" for i in range(3)))
    from jaggy.engine import AuditConfig, run_audit

    run_audit(
        AuditConfig(
            model="py:report_fixtures:tiny_model",
            data=str(data),
            labels=str(tmp_path / "labels.csv"),
            protocols=["crop"],
            steps=3,
            out=str(tmp_path / "run"),
            workers=0,
        ),
        progress=False,
    )
    html = render_report([tmp_path / "run"])
    assert "worst-case accuracy" in html
    assert "(the label)" in html


def test_hostile_strings_everywhere_are_escaped(tmp_path):
    data = tmp_path / "images"
    write_images(data, 2, names=[XSS_NAME, "a&b\"'.png"])
    run = make_run(tmp_path / "run", data, ["crop"], steps=3)
    layers = tmp_path / "layers"
    layers.mkdir()
    (layers / "layers.json").write_text(
        json.dumps(
            {
                "model": "<script>alert('m')</script>",
                "total_stride": 2,
                "layers": [
                    {
                        "name": "<b onmouseover=alert(2)>conv</b>",
                        "kind": "conv",
                        "stride": 2,
                        "cumulative_stride": 2,
                        "out_shape": [4, 16, 16],
                        "equivariance_error": [0.0, 0.3, 0.0],
                        "aliasing_energy": 0.2,
                    }
                ],
            }
        )
    )
    html = render_report([run, layers])
    for raw in (XSS_NAME, "<script>", "<b onmouseover", "a&b\"'"):
        assert raw not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in html
    assert "&lt;b onmouseover=alert(2)&gt;conv&lt;/b&gt;" in html
    assert "a&amp;b&#34;&#39;.png" in html  # markupsafe's escapes


def test_layers_section_from_layers_json(tmp_path):
    folder = tmp_path / "layers"
    folder.mkdir()
    shifts = [{"index": k, "dx": float(k), "dy": float(k)} for k in range(5)]
    layers = []
    for i, (stride, cumulative) in enumerate([(2, 2), (1, 2), (2, 4)]):
        errors = [0.0] + [0.0 if k % cumulative == 0 else 0.1 * (i + 1) for k in range(1, 5)]
        layers.append(
            {
                "name": f"layer{i}",
                "kind": "conv",
                "stride": stride,
                "cumulative_stride": cumulative,
                "out_shape": [8, 16 // cumulative, 16 // cumulative],
                "subsampling": stride > 1,
                "equivariance_error": errors,
                "mean_error_on_grid": 0.0,
                "mean_error_off_grid": 0.1 * (i + 1),
                "aliasing_energy": 0.05 * (i + 1) if stride > 1 else None,
            }
        )
    (folder / "layers.json").write_text(
        json.dumps(
            {
                "model": "py:x:y",
                "total_stride": 4,
                "shifts": shifts,
                "layers": layers,
                "pooled": {"relative_change": [0, 0.1, 0, 0.1, 0]},
                "logits": {"relative_change": [0, 0.2, 0, 0.2, 0]},
            }
        )
    )
    Image.new("RGB", (40, 30), (200, 30, 30)).save(folder / "feature_maps.png")
    html = render_report([folder])
    assert _sections(html) == ["layers"]
    assert "equivariance error versus depth" in html
    assert "error versus shift" in html
    assert "invariance after global pooling" in html
    assert "aliasing energy at the subsampling layers" in html
    assert 'alt="feature_maps.png"' in html
    assert "layer2" in html


def test_compare_section_marks_the_winner(tmp_path):
    folder = tmp_path / "cmp"
    folder.mkdir()

    def entry(v, lo, hi):
        return {"value": v, "ci95": [lo, hi]}

    rows = [
        {
            "variant": "base",
            "params": 1000,
            "ms_per_image": 2.0,
            "protocols": {
                "crop": {
                    "p_top1_change": entry(0.30, 0.25, 0.35),
                    "consistency": entry(0.70, 0.6, 0.8),
                    "n_images": 10,
                }
            },
        },
        {
            "variant": "blurpool:4",
            "params": 1000,
            "ms_per_image": 3.0,
            "ms_ratio_to_base": 1.5,
            "protocols": {
                "crop": {
                    "p_top1_change": entry(0.10, 0.05, 0.15),
                    "consistency": entry(0.75, 0.65, 0.85),
                    "n_images": 10,
                }
            },
        },
    ]
    (folder / "compare.json").write_text(json.dumps({"model": "m", "variants": rows}))
    html = render_report([folder])
    assert _sections(html) == ["compare"]
    body = html.split('id="compare"')[1]
    table_rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>")[1].split("</tbody>")[0])
    base, blur = table_rows
    # P(change): lower wins, clearly (CIs apart); consistency: higher wins, CIs overlap
    assert '<span class="win">0.100' in blur and "clear" in blur.split("</td>")[1]
    assert '<span class="win">0.750' in blur and "clear" not in blur.split("</td>")[2]
    assert 'class="win">2.00' in base  # the faster variant
    assert "1.50" in blur  # time relative to base
    assert "1,000" in base  # parameters
    assert "win" not in base.split("</td>")[1]


def test_files_nothing_writes_get_no_section(tmp_path):
    (tmp_path / "bias.json").write_text(json.dumps({"n_boxes": 3}))
    with pytest.raises(DataError, match="holds no results"):
        render_report([tmp_path])


def test_one_function_adds_a_section(tmp_path, run_dir):
    marker = tmp_path / "extra.json"
    marker.write_text("{}")

    @register_section("zz-extra", "Extra", order=99, present=has_file("extra.json"))
    def extra(runs, report):
        return render_template("_macros.html.j2") + Markup("<p>{} folder(s) <i>{}</i></p>").format(
            len(runs), "<b>bold</b>"
        )

    @register_section("zz-text", "Text", order=98, present=has_file("extra.json"))
    def text(runs, report):
        return "<b>a plain string is text</b>"

    try:
        html = render_report([run_dir, tmp_path])
        assert _sections(html)[-2:] == ["zz-text", "zz-extra"]
        assert "1 folder(s) <i>&lt;b&gt;bold&lt;/b&gt;</i>" in html
        assert "&lt;b&gt;a plain string is text&lt;/b&gt;" in html
        assert "zz-extra" in [s.name for s in list_sections()]
    finally:
        from jaggy.report import _registry

        _registry._SECTIONS.pop("zz-extra", None)
        _registry._SECTIONS.pop("zz-text", None)


def test_bad_arguments(tmp_path):
    with pytest.raises(ArgumentError):
        render_report([])
    with pytest.raises(DataError, match="not a folder"):
        render_report([tmp_path / "missing"])
    with pytest.raises(DataError, match="holds no results"):
        render_report([tmp_path])
    with pytest.raises(ArgumentError):
        ReportLimits(wall_images=0)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read"):
        render_report([tmp_path])


def test_cli_report(run_dir, tmp_path, capsys):
    out = tmp_path / "sub" / "r.html"
    assert main(["report", str(run_dir), "--out", str(out), "--wall-images", "3"]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert main(["report", str(run_dir), "--out", str(out), "--wall-images", "0"]) == 2


def test_audit_report_flag_writes_the_report(tmp_path, capsys):
    data = tmp_path / "images"
    write_images(data, 2, seed=4)
    out = tmp_path / "run"
    code = main(
        [
            "audit",
            "py:report_fixtures:tiny_model",
            str(data),
            "--protocol",
            "crop",
            "--steps",
            "3",
            "--workers",
            "0",
            "--out",
            str(out),
            "--no-progress",
            "--report",
        ]
    )
    assert code == 0
    assert (out / "report.html").is_file()
    assert "report:" in capsys.readouterr().out


def test_write_report_is_atomic_and_readable(run_dir, tmp_path):
    out = write_report([run_dir], tmp_path / "r.html")
    assert out.stat().st_mode & 0o044  # readable by others, like any shared file
    assert not list(tmp_path.glob(".*.tmp"))
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_summary_only_folder_shows_headline_without_dangling_links(tmp_path):
    entry = {"p_top1_change": {"value": 0.25, "ci95": [0.2, 0.3]}, "n_images": 4, "n_pairs": 12}
    summary = {"model": "m", "protocols": {"crop": entry, "black@117": entry}, "n_images": 4}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    html = render_report([tmp_path])
    assert _sections(html) == ["headline"]  # one embed size: no scale curves
    assert 'href="#curves-' not in html
    assert "was 0.250" in html and "under every protocol" in html
    ids = set(re.findall(r'id="([^"]+)"', html))
    for target in re.findall(r'href="#([^"]+)"', html):
        assert target in ids


def test_curve_axes_follow_the_path(run_dir, tmp_path):
    xs, label = read_views(run_dir, {})[0]["crop"].x_values()
    assert label == "shift (px along the path)" and xs.tolist() == [0, 1, 2, 3, 4]
    data = tmp_path / "images"
    write_images(data, 2, seed=1)
    grid = make_run(tmp_path / "grid", data, ["crop"], steps=3, path="grid")
    xs, label = read_views(grid, {})[0]["crop"].x_values()
    assert label.startswith("view k") and xs.tolist() == list(range(9))  # serpentine order
    vertical = make_run(tmp_path / "vertical", data, ["black"], steps=3, path="vertical")
    xs, label = read_views(vertical, {})[0]["black@24"].x_values()
    assert label.startswith("shift") and xs.tolist() == [0, 1, 2]
    html = render_report([grid])
    assert 'data-columns="9"' in html


def test_report_is_deterministic_and_self_contained(run_dir, monkeypatch):
    html = render_report([run_dir])
    assert render_report([run_dir]) == html  # same folders, same bytes (figures included)
    from jaggy.figures import _parallel

    monkeypatch.setattr(_parallel, "MAX_WORKERS", 1)  # every figure and view drawn here
    assert render_report([run_dir]) == html
    assert "<script" not in html and "@import" not in html
    for match in re.finditer(r'(?:src|href)="([^"]*)"', html):
        assert match.group(1).startswith(("data:", "#")), match.group(1)
    for match in re.finditer(r"url\(([^)]*)\)", html):
        assert match.group(1).startswith("#"), match.group(0)
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    assert "<text" in html and "font-family:" not in html.split("</style>", 1)[1]


def test_report_size_is_bounded(run_dir):
    # 6 images x 4 protocol keys: every figure, 6 curve cards x 4 keys with 5 views each
    html = render_report([run_dir])
    assert html.count('class="sequence"') == 6 * 4
    assert len(html.encode("utf-8")) < 450_000
