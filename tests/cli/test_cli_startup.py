"""`jaggy --help`, `jaggy COMMAND --help` and a bad argument answer before the heavy imports:
the arguments are parsed and checked before the engine's dependencies load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import jaggy

# What no help text and no argument check needs (each takes a second or more to import).
HEAVY = ("torchvision", "matplotlib", "pandas", "timm", "sklearn", "av")
SRC = str(Path(jaggy.__file__).parents[1])

# `python -m jaggy ARGS` in-process, then the modules it imported.
RUN = """
import json, runpy, sys
sys.argv = ["jaggy", *{argv!r}]
try:
    runpy.run_module("jaggy", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
print("\\n" + json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
"""


def jaggy_cli(argv: list[str], cwd: Path) -> tuple[int, set[str], str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", RUN.format(argv=argv)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
    )
    out, _, last = proc.stdout.rstrip().rpartition("\n")
    result = json.loads(last)
    return result["code"], set(result["modules"]), out, proc.stderr


@pytest.mark.parametrize("argv", [["--help"], ["audit", "--help"], ["report", "--help"]])
def test_help_loads_no_heavy_module(argv, tmp_path):
    code, modules, out, _ = jaggy_cli(argv, tmp_path)
    assert code == 0 and "usage: jaggy" in out
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


@pytest.mark.parametrize("argv", [["--help"], [], ["--version"], ["no-such-command"]])
def test_jaggy_alone_imports_no_subcommand_and_no_torch(argv, tmp_path):
    code, modules, out, err = jaggy_cli(argv, tmp_path)
    assert code == {"--help": 0, "--version": 0}.get(argv[0] if argv else None, 2)
    assert "torch" not in modules and "numpy" not in modules
    assert not {m for m in modules if m.startswith("jaggy.cli.") and m != "jaggy.cli._options"}


def test_the_listing_read_from_the_sources_is_what_the_modules_declare():
    """`jaggy --help` lists each subcommand from its source: the same name and texts as its
    `@command`, and the same help page as the parser that imports every subcommand."""
    import importlib

    from jaggy.cli import build_parser, listings

    found = listings()
    assert [f.name for f in found] == sorted(
        ["audit", "bias", "compare", "demo", "finetune", "layers", "report", "train"]
    )
    for listing in found:
        command = importlib.import_module(listing.module).run.command
        assert (listing.name, listing.texts) == (command.name, dict(command.texts))
    assert build_parser([]).format_help() == build_parser().format_help()


def test_a_bad_argument_fails_before_the_heavy_imports_and_writes_nothing(tmp_path):
    argv = ["audit", "jaggy:efficientnet_lite0", "--samples", "--steps", "-1", "--out", "run"]
    code, modules, _, err = jaggy_cli(argv, tmp_path)
    assert code == 2
    (line,) = err.strip().splitlines()  # one line that names the option
    assert line.startswith("jaggy audit: error: --steps") and "-1" in line
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert list(tmp_path.iterdir()) == []
