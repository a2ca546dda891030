"""The public surface: the names users may rely on, checked in as tests/api/public_names.txt.

Public names are those in the `__all__` of `jaggy` and of its public packages (no leading
underscore anywhere in the dotted path); everything else may change without notice. A name
that disappears fails here. A name added on purpose is added to the list:

    PYTHONPATH=src python tests/api/test_api_surface.py --update
"""

from __future__ import annotations
import __future__

import importlib
import pkgutil
import sys
import types
from pathlib import Path

import jaggy

LIST = Path(__file__).with_name("public_names.txt")
UPDATE = "PYTHONPATH=src python tests/api/test_api_surface.py --update"
# Packages that are not a Python API: the command line and the report's section plugins.
NOT_API = {"jaggy.cli", "jaggy.report.sections"}


def public_modules() -> list[types.ModuleType]:
    modules = [jaggy]
    for info in pkgutil.walk_packages(jaggy.__path__, "jaggy."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or any(
            info.name == n or info.name.startswith(n + ".") for n in NOT_API
        ):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def public_names() -> list[str]:
    names = []
    for module in public_modules():
        names += [f"{module.__name__}.{name}" for name in getattr(module, "__all__", ())]
    return sorted(names)


def recorded_names() -> list[str]:
    return [line.strip() for line in LIST.read_text().splitlines() if line.strip()]


def test_no_public_name_disappears_and_none_appears_unnoticed():
    now, recorded = set(public_names()), set(recorded_names())
    gone, added = sorted(recorded - now), sorted(now - recorded)
    assert not gone, (
        f"public names disappeared: {', '.join(gone)}. Users import them; keep them (or, if "
        f"removing them is the intent, run `{UPDATE}` and say so in the commit)"
    )
    assert not added, (
        f"new public names: {', '.join(added)}. If they are meant for users, run `{UPDATE}`; "
        "otherwise keep them out of `__all__` (import them from their private module)"
    )


def test_every_listed_name_exists():
    for dotted in recorded_names():
        module, _, name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), name), dotted


def test_every_public_package_says_what_is_public():
    """Each public package has an `__all__`, and exports nothing else (a name imported into a
    package `__init__` looks public in a notebook's completion)."""
    for module in public_modules():
        if not hasattr(module, "__path__"):
            continue
        assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
        extra = [
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and name not in module.__all__
            and not isinstance(value, (types.ModuleType, __future__._Feature))
        ]
        assert not extra, (
            f"{module.__name__} exports {', '.join(sorted(extra))} outside __all__; import them "
            "from their private module where they are used, or add them to __all__"
        )


def test_the_surface_stays_small():
    """The trimmed surface: 144 names before the public API was chosen, and more packages since."""
    assert len(recorded_names()) <= 120


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {UPDATE}")
    LIST.write_text("\n".join(public_names()) + "\n")
    print(f"{LIST}: {len(public_names())} public names")
