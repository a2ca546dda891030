"""The report's worst-case section: the robust-accuracy table from summary.json, the
failing-shift curves from metrics.parquet, and no sequence figures for worst-case sets."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from report_fixtures import TinyNet, write_images

import jaggy
from jaggy.metrics._worst_case import robust_within
from jaggy.results import read_metrics


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("worst-report")
    write_images(root / "images", 4, seed=5)
    net = TinyNet(seed=3)
    net.head.weight.data.mul_(40.0)
    return jaggy.audit(
        net,
        root / "images",
        protocols=["crop"],
        steps=4,
        worst_case=["circular", "grid"],
        out=root / "run",
        batch_size=64,
        workers=0,
        threads=1,
        progress=False,
    )


def section(html: str, name: str) -> str:
    start = html.index(f'id="{name}"')
    return html[start : html.index("</section>", start)]


def test_worst_case_section_shows_the_summary_and_the_curves(run, tmp_path):
    html = jaggy.report(run.out, tmp_path / "report.html").path.read_text()
    body = section(html, "worst_case")
    for key in ("worst@circular", "worst@grid"):
        value = run.summary.protocols[key].value("robust_accuracy")
        row = body[body.index(key) :].split("</tr>")[0]
        assert f"{value:.3f}" in row
    assert "AFC robust score, integer circular shifts" in body
    # grid scores every view: not Engstrom's grid accuracy, which scores one view
    assert "all 775 views right (at most Engstrom et al.&#39;s grid accuracy" in body
    assert "Engstrom et al. grid accuracy" not in body
    assert body.count("<svg") == 2  # |shift| for the set of shifts, |angle| for the rotating
    # worst-case sets are not drawn as sequences (curves, wall); the crop protocol is
    ids = re.findall(r'<section[^>]*id="([^"]+)"', html)
    assert "curves-crop" in ids and not any(
        i.startswith(("curves-worst", "wall-worst")) for i in ids
    )


def ref_robust_within(failing, robust, limit):
    kept = [
        r == 1 or (not math.isnan(f) and f > limit)
        for f, r in zip(failing, robust, strict=True)
        if not math.isnan(r)
    ]
    return sum(kept) / len(kept) if kept else math.nan


def test_robust_within_matches_a_plain_loop(run):
    table = read_metrics(run.out).to_pandas()
    rows = table[table["protocol"] == "worst@circular"]
    rng = np.random.default_rng(0)
    cases = [(rows["failing_shift"].to_numpy(), rows["robust_accuracy"].to_numpy())]
    for _ in range(5):
        robust = rng.choice([0.0, 1.0, np.nan], size=12)
        failing = np.where(robust == 0, rng.uniform(0, 5, size=12), np.nan)
        cases.append((failing, robust))
    limits = np.linspace(0, 6, 13)
    for failing, robust in cases:
        got = robust_within(failing, robust, limits)
        want = [ref_robust_within(failing, robust, r) for r in limits]
        assert np.allclose(got, want, equal_nan=True)
    # the curve ends at the robust accuracy
    failing, robust = cases[0]
    assert robust_within(failing, robust, np.array([1e9]))[0] == pytest.approx(np.nanmean(robust))


def test_random_sets_name_engstroms_number_on_worst_of_k_accuracy():
    from jaggy.report.sections.worst_case import peer_name

    text = peer_name("random10", 11)
    assert "worst-of-K accuracy = Engstrom et al. worst-of-10 accuracy" in text
    assert "robust accuracy: all 11 views right" in text
    assert "Engstrom" not in text.split(";")[1]
