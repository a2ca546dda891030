"""Command-line options declared once: each `Option` is one `add_argument` call and, when it
feeds the library call behind a subcommand, the keyword argument its value becomes. A command
lists its options once (shared groups from `_common`, then its own); `@command` on its
`run(args)` makes it a subcommand with those options, and `call_kwargs` turns the parsed
arguments into the library call's keywords."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Option:
    """One argument of a parser.

    flags: `("--checkpoint",)`, or `("model",)` for a positional.
    settings: the keyword arguments of `add_argument` (help, default, type, ...).
    to: the keyword of the library call that takes the value (`option` makes it the option's
        own name); None when the command reads the value itself (e.g. --resume, an argument
        of the run, not of its config).
    convert: value -> keyword value (a path made absolute, `not` of a --no-X flag, ...);
        not applied to None.
    """

    flags: tuple[str, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    to: str | None = None
    convert: Callable[[Any], Any] | None = None

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments that holds the value (argparse's rule)."""
        if "dest" in self.settings:
            return self.settings["dest"]
        return self.flags[0].lstrip("-").replace("-", "_")

    def but(self, **changes: Any) -> Option:
        """This option with a command's own wording or default: `to` and `convert` change the
        keyword it feeds, any other name an `add_argument` setting (None drops the setting)."""
        own = {k: changes.pop(k) for k in ("to", "convert") if k in changes}
        settings = {**self.settings, **changes}
        return replace(self, settings={k: v for k, v in settings.items() if v is not None}, **own)


SAME = "same"  # `option(to=SAME)`: the keyword is the option's own name


def option(
    *flags: str, to: str | None = SAME, convert: Callable[[Any], Any] | None = None, **settings
) -> Option:
    """An `Option` that feeds the keyword of its own name unless `to` names another one
    (`to=None`: the command reads it): `option("--seed", type=int, default=0, help="...")`."""
    opt = Option(tuple(flags), settings, None, convert)
    return replace(opt, to=opt.dest if to == SAME else to)


@dataclass(frozen=True)
class Group:
    """Options shown under their own title in --help."""

    title: str
    options: tuple[Option, ...]


def add_options(parser: argparse.ArgumentParser, options: Iterable[Option | Group]) -> None:
    """Add each option to `parser`, in order; a `Group` as an argument group of its own."""
    for opt in options:
        if isinstance(opt, Group):
            add_options(parser.add_argument_group(opt.title), opt.options)
        else:
            parser.add_argument(*opt.flags, **opt.settings)


def flatten(options: Iterable[Option | Group]) -> list[Option]:
    """The options, those of groups included."""
    return [o for opt in options for o in (opt.options if isinstance(opt, Group) else [opt])]


def call_kwargs(
    args: argparse.Namespace, options: Iterable[Option | Group], *, unset: bool = True
) -> dict[str, Any]:
    """The keyword arguments of the library call: one per option that has a `to`, converted
    (None stays None). `unset=False` leaves out the options left at None, so that the callee's
    defaults apply."""
    kwargs = {}
    for opt in flatten(options):
        if opt.to is None:
            continue
        value = getattr(args, opt.dest)
        if value is None and not unset:
            continue
        kwargs[opt.to] = value if value is None or opt.convert is None else opt.convert(value)
    return kwargs


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, its options, what runs it and argparse's `help` and
    `description`."""

    name: str
    options: tuple[Option | Group, ...]
    run: Callable[[argparse.Namespace], int]
    texts: Mapping[str, str]

    def add_to(self, subparsers) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(self.name, **self.texts)
        add_options(parser, self.options)
        parser.set_defaults(func=self.run)
        return parser


def command(name: str, options, **texts: str):
    """Make the decorated `run(args) -> int` the subcommand `name` with `options`; its
    docstring is the command's help: the first line for `jaggy --help`, the paragraph after it
    for `jaggy NAME --help` (argparse re-flows both; `texts` may give `help` and `description`
    instead). `run.command` is its `Command`."""

    def decorate(run):
        summary, _, rest = inspect.cleandoc(run.__doc__ or "").partition("\n\n")
        own = {"help": summary or None, "description": rest or None, **texts}
        run.command = Command(name, tuple(options), run, {k: v for k, v in own.items() if v})
        return run

    return decorate
