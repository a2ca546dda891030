"""`jaggy ...` subcommands. Each public module of this package is one subcommand: its
`run(args) -> int`, decorated with `_options.command`, names it and lists its options. The CLI is
a thin layer over the Python API.

`jaggy COMMAND ...` imports only that subcommand's module (whose options may need torch, for
the protocol names); `jaggy --help` imports none: it reads each subcommand's name and summary
from its source."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from .. import __version__
from ..errors import JaggyError


@dataclass(frozen=True)
class Listing:
    """A subcommand as `jaggy --help` lists it: its name, the module that defines it, and the
    texts of its `add_parser` (`help`: the first paragraph of its `run` docstring)."""

    name: str
    module: str
    texts: dict[str, str]


def listings() -> list[Listing]:
    """Every subcommand, in module-name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            found.append(_listing(f"{__name__}.{info.name}"))
    return found


def _listing(module: str) -> Listing:
    """The `@command(NAME, OPTIONS, **texts)` of `module`'s `run`, read from the source with
    `ast`, as `_options.command` reads it; the module is imported only where its source is
    not at hand or says it otherwise (a name or text that is not a literal)."""
    spec = importlib.util.find_spec(module)
    try:
        with open(spec.origin, encoding="utf-8") as source:
            tree = ast.parse(source.read())
        run = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run")
        (decorator,) = [d for d in run.decorator_list if _calls(d, "command")]
        name = ast.literal_eval(decorator.args[0])
        texts = {k.arg: ast.literal_eval(k.value) for k in decorator.keywords}
        docstring = ast.get_docstring(run) or ""
    except (OSError, TypeError, StopIteration, ValueError, SyntaxError):
        command = importlib.import_module(module).run.command
        return Listing(command.name, module, dict(command.texts))
    summary, _, rest = docstring.partition("\n\n")
    own = {"help": summary or None, "description": rest or None, **texts}
    return Listing(name, module, {k: v for k, v in own.items() if v})


def _calls(node: ast.expr, function: str) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function
    )


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser of `jaggy`. `commands`: the subcommands whose options it knows (default:
    all; importing a subcommand imports its module); the others are listed by name and
    summary only."""
    parser = argparse.ArgumentParser(
        prog="jaggy",
        description="Measure, explain and reduce how image classifiers change their answer "
        "under tiny image transformations.",
    )
    parser.add_argument("--version", action="version", version=f"jaggy {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None if commands is None else set(commands)
    for listing in listings():
        if wanted is None or listing.name in wanted:
            command = importlib.import_module(listing.module).run.command
            command.add_to(subparsers)
        else:
            subparsers.add_parser(listing.name, **listing.texts)
    return parser


# Subcommands whose work survives an interruption (committed chunks).
RESUMABLE = {"audit": True, "compare": True, "demo": True}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[:1])
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
