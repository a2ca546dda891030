"""`jaggy ...` subcommands. Each public module of this package is one subcommand: its
`run(args) -> int`, decorated with `_options.command`, names it and lists its options. The CLI is
a thin layer over the Python API."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from .. import __version__
from ..errors import JaggyError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaggy",
        description="Measure, explain and reduce how image classifiers change their answer "
        "under tiny image transformations.",
    )
    parser.add_argument("--version", action="version", version=f"jaggy {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.run.command.add_to(subparsers)
    return parser


# Subcommands whose work survives an interruption (committed chunks).
RESUMABLE = {"audit": True, "compare": True, "demo": True}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = _subcommands(parser)
    if argv and argv[0] in commands:
        # intermixed: `jaggy audit MODEL --steps 4 DATA` keeps DATA as the positional
        args = commands[argv[0]].parse_intermixed_args(argv[1:])
        args.command = argv[0]
    else:
        args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except JaggyError as exc:
        print(f"jaggy {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "; rerun with --resume to continue" if RESUMABLE.get(args.command) else ""
        print(f"jaggy {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
