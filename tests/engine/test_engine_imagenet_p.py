"""ImageNet-P-style runs end to end: difficulty, flip rates against --baseline, the report."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

from conftest import write_synthetic_images
from jaggy.cli import main
from jaggy.engine import AuditConfig, run_audit
from jaggy.errors import ArgumentError
from jaggy.metrics import _imagenet_p
from jaggy.report import write_report

SEQUENCES = ["translate", "rotate", "tilt", "rescale", "brightness"]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stills") / "images"
    write_synthetic_images(folder, 3, side=60, seed=2)
    return folder


def config(images: Path, out: Path, model: str, **changes) -> AuditConfig:
    options = dict(
        model=f"py:tinynets:{model}",
        data=str(images),
        protocols=list(SEQUENCES),
        batch_size=16,
        workers=0,
        threads=1,
        out=str(out),
    )
    options.update(changes)
    return AuditConfig(**options)


@pytest.fixture(scope="module")
def baseline(images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base") / "run"
    run_audit(config(images, out, "tiny_jumpy", difficulty=2), progress=False)
    return out


def test_flip_rates_against_the_baseline(images, baseline, tmp_path):
    result = run_audit(
        config(images, tmp_path / "run", "tiny", difficulty=2, baseline=str(baseline)),
        progress=False,
    )
    record = json.loads((result.out / "imagenet_p.json").read_text())
    base = json.loads((baseline / "summary.json").read_text())["protocols"]
    mine = result.summary.to_dict()["protocols"]
    assert list(record["perturbations"]) == SEQUENCES
    rates, t5d_rates = [], []
    for key, row in record["perturbations"].items():
        fp, fp_base = mine[key]["flip_probability"]["value"], base[key]["flip_probability"]["value"]
        t5, t5_base = mine[key]["top5_distance"]["value"], base[key]["top5_distance"]["value"]
        assert row["style"] == "ImageNet-P-style"
        assert row["flip_probability"] == fp and row["baseline_flip_probability"] == fp_base
        assert row["top5_distance"] == t5 and row["baseline_top5_distance"] == t5_base
        for got, value, base_value, kept in (
            (row["flip_rate"], fp, fp_base, rates),
            (row["top5_distance_rate"], t5, t5_base, t5d_rates),
        ):
            if base_value == 0:  # no rate against a baseline that never moves
                assert got is None
            else:
                assert got == pytest.approx(value / base_value)
                kept.append(value / base_value)
    assert t5d_rates, "the baseline's top-5 ranking never moved: the test measures nothing"
    assert record["mT5D"] == pytest.approx(sum(t5d_rates) / len(t5d_rates))
    assert record["mFR"] == (pytest.approx(sum(rates) / len(rates)) if rates else None)
    assert record["difficulty"] == 2 and record["baseline"]["same_images"] is True
    # the report's table shows them
    html = write_report([result.out], tmp_path / "report.html").read_text()
    section = html[html.index('id="perturbations"') :]
    assert "mFR" in section and "ImageNet-P-style" in section and "d = 2" in section


def test_baseline_arguments_are_checked_before_any_work(images, baseline, tmp_path):
    with pytest.raises(ArgumentError, match="--difficulty 2, this run at 1"):
        run_audit(config(images, tmp_path / "a", "tiny", baseline=str(baseline)), progress=False)
    with pytest.raises(ArgumentError, match="add --protocol translate"):
        run_audit(
            config(images, tmp_path / "b", "tiny", protocols=["crop"], baseline=str(baseline)),
            progress=False,
        )
    with pytest.raises(ArgumentError, match="--baseline: .*summary.json. does not exist"):
        run_audit(config(images, tmp_path / "c", "tiny", baseline=str(images)), progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_prints_the_flip_rates(images, baseline, tmp_path, capsys):
    code = main(
        ["audit", "py:tinynets:tiny", str(images), "--protocol", "translate", "--protocol"]
        + ["brightness", "--difficulty", "2", "--baseline", str(baseline), "--batch-size", "16"]
        + ["--workers", "0", "--out", str(tmp_path / "cli"), "--no-progress"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "flip rates against py:tinynets:tiny_jumpy (difficulty 2" in printed
    assert "translate, brightness: ImageNet-P-style sequences generated" in printed
    assert "mFR" in printed and "mT5D" in printed


def test_flip_rate_example_holds():
    result = doctest.testmod(_imagenet_p, verbose=False)
    assert result.attempted > 0 and result.failed == 0
