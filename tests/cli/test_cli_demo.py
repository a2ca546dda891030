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
