"""The option declarations behind every subcommand: one Option per flag, keywords for the call."""

import argparse

import pytest

from jaggy.cli import build_parser
from jaggy.cli._options import Group, add_options, call_kwargs, option
from jaggy.engine import AuditConfig
from jaggy.layers._run import LayerSettings
from jaggy.report import ReportLimits
from jaggy.train import FinetuneConfig, TrainConfig


def parse(options, argv):
    parser = argparse.ArgumentParser()
    add_options(parser, options)
    return parser.parse_args(argv)


def test_an_option_feeds_its_own_name_another_one_or_none():
    options = (
        option("--seed", type=int, default=0),
        option("--no-figures", action="store_true", to="figures", convert=lambda v: not v),
        option("--resume", action="store_true", to=None),
        Group("grouped", (option("--steps", type=int),)),
    )
    args = parse(options, ["--seed", "3", "--no-figures"])
    assert call_kwargs(args, options) == {"seed": 3, "figures": False, "steps": None}
    assert call_kwargs(args, options, unset=False) == {"seed": 3, "figures": False}


def test_but_changes_the_wording_and_drops_settings_set_to_none():
    base = option("--batch-size", default="auto", metavar="N|auto", help="views", convert=str)
    own = base.but(type=int, default=8, metavar=None, help="shifted views", convert=None)
    assert own.settings == {"default": 8, "help": "shifted views", "type": int}
    assert own.to == "batch_size" and own.convert is None
    assert base.settings["metavar"] == "N|auto"  # the shared declaration is unchanged


@pytest.mark.parametrize(
    ("argv", "module", "options", "config"),
    [
        (["audit", "m", "d"], "audit", "OPTIONS", AuditConfig),
        (["compare", "m", "d", "--remedy", "aps"], "compare", "OPTIONS", AuditConfig),
        (["finetune", "m", "d"], "finetune", "OPTIONS", FinetuneConfig),
        (["train", "m", "d"], "train", "YOUR_DATA", TrainConfig),
        (["layers", "m"], "layers", "SHIFT_OPTIONS", LayerSettings),
        (["report", "r"], "report", "LIMIT_OPTIONS", ReportLimits),
    ],
)
def test_every_keyword_a_command_makes_is_one_its_call_takes(argv, module, options, config):
    import importlib

    commands = {a.dest: a for a in build_parser()._actions if a.dest == "command"}
    args = commands["command"].choices[argv[0]].parse_args(argv[1:])
    declared = getattr(importlib.import_module(f"jaggy.cli.{module}"), options)
    kwargs = call_kwargs(args, declared)
    fields = set(config.__dataclass_fields__)
    assert kwargs and set(kwargs) <= fields
