"""The report's representation section: numbers from summary.json and metrics.parquet, beside
the class-level ones; runs without logits (headless models) report too."""

from __future__ import annotations

import re

import pytest
from report_fixtures import write_images

import jaggy
from jaggy.report import render_report
from jaggy.results import read_metrics


def _audit(root, data, model, measure):
    return jaggy.audit(
        model,
        str(data),
        protocols=["crop", "neighbours"],
        steps=4,
        out=root / model.split(":")[-1],
        batch_size=8,
        workers=0,
        threads=1,
        measure=measure,
        progress=False,
    ).out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("representation")
    write_images(root / "images", 3, seed=5)
    return (
        _audit(root, root / "images", "py:tinynets:tiny_jumpy", "logits,features"),
        _audit(root, root / "images", "py:tinynets:tiny_headless", "features"),
    )


def _section(html: str) -> str:
    return html.split('id="representation"')[1].split("</section>")[0]


def test_section_shows_the_summary_numbers_beside_the_class_ones(runs):
    classifier, _ = runs
    html = _section(render_report([classifier]))
    summary = jaggy.results.read_summary(classifier)
    for key in ("crop", "neighbours"):
        entry = summary.protocols[key]
        assert f"{entry.value('feature_cos_distance'):.4f}" in html
        assert f"{entry.value('representation_change_rate'):.3f}" in html
    assert "P(top-1 change)" in html and "threshold τ" in html
    table = read_metrics(classifier).to_pandas()
    most = table.sort_values("feature_cos_distance", ascending=False).iloc[0]
    assert most.image_id in html  # the image whose features move most is listed


def test_headless_run_reports_without_class_metrics(runs):
    _, headless = runs
    page = render_report([headless])
    html = _section(page)
    assert "the model&#39;s output" in html and "P(top-1 change)" not in html
    assert re.search(r"fooling rate", html)


def test_logits_only_runs_have_no_representation_section(tmp_path):
    write_images(tmp_path / "images", 2, seed=1)
    run = _audit(tmp_path, tmp_path / "images", "py:tinynets:tiny", "logits")
    assert 'id="representation"' not in render_report([run])
