"""`jaggy demo`'s options: the automatic configuration by default, bad values refused first."""

from __future__ import annotations

from jaggy.cli import build_parser, main
from jaggy.cli.demo import DEMO_PROTOCOLS, demo_config


def demo_args(*argv):
    return build_parser().parse_args(["demo", *argv])


def test_the_demo_runs_on_the_automatic_configuration_by_default(tmp_path):
    config = demo_config(demo_args("--out", str(tmp_path / "d")))
    assert config.batch_size == "auto"
    assert config.protocols == DEMO_PROTOCOLS and config.samples
    assert demo_config(demo_args("--batch-size", "8")).batch_size == 8


def test_a_bad_batch_size_fails_before_any_work(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["demo", "--batch-size", "zero", "--out", str(out), "--no-progress"]) == 2
    assert "--batch-size must be a positive integer or 'auto'" in capsys.readouterr().err
    assert not out.exists()


def test_the_demo_draws_its_figures_from_the_merged_predictions_before_the_metrics(
    tmp_path, monkeypatch
):
    """demo_job's PNGs start once predictions.parquet is whole, while the metrics and the
    report are still to come; a failure there leaves the audit to finish, and they are
    started again after it."""
    from conftest import write_synthetic_images
    from jaggy.cli.demo import demo_job
    from jaggy.engine import AuditConfig
    from jaggy.report import _curve_pngs

    write_synthetic_images(tmp_path / "images", 2, side=40, seed=8)
    out = tmp_path / "demo"
    config = AuditConfig(
        model="py:tinynets:tiny1000",
        data=str(tmp_path / "images"),
        protocols=["crop"],
        steps=4,
        batch_size=4,
        workers=0,
        out=str(out),
    )
    real = _curve_pngs.start_shift_curve_pngs
    seen = []

    def spy(run_dir, *args, **kwargs):
        seen.append(((out / "predictions.parquet").is_file(), (out / "metrics.parquet").exists()))
        if len(seen) == 1:
            raise OSError("the first start fails")
        return real(run_dir, *args, **kwargs)

    monkeypatch.setattr(_curve_pngs, "start_shift_curve_pngs", spy)
    outputs = demo_job(config, progress=False)
    assert seen == [(True, False), (True, True)]  # early (failed), then after the audit
    assert len(outputs.figures) == 2 and all(p.is_file() for p in outputs.figures)
    assert outputs.report.is_file() and (out / "summary.json").is_file()
    seen[1:] = []
    outputs = demo_job(config, progress=False)  # the finished demo reused
    assert seen[1:] == [(True, True)] and len(outputs.figures) == 2
