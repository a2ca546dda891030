"""`import jaggy` is quick: the public names and the subpackages load on first use (PEP 562),
each still resolves (`jaggy.X`, `from jaggy import X`), and type checkers still see them."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import jaggy

# Modules whose import takes a second or more here, and that `import jaggy` does not need.
HEAVY = ("torch", "torchvision", "matplotlib", "pandas", "pyarrow", "timm", "sklearn", "av")
SRC = str(Path(jaggy.__file__).parents[1])
LIST = Path(__file__).with_name("public_names.txt")


def fresh(code: str) -> str:
    """stdout of `code` in a fresh interpreter with this checkout's jaggy."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_jaggy_loads_no_heavy_module():
    code = "import json, sys, jaggy; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(fresh(code)))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert {m for m in loaded if m.startswith("jaggy")} == {"jaggy", "jaggy._api", "jaggy.errors"}


def test_every_public_name_resolves_from_a_fresh_import():
    """Each top-level name through the attribute and through `from jaggy import`, before any
    subpackage was imported; each pinned name of a subpackage through its module."""
    top = [n.split(".", 1)[1] for n in LIST.read_text().split() if n.count(".") == 1]
    code = f"""
import importlib, types
import jaggy
names = {top!r}
for name in names:
    assert getattr(jaggy, name) is not None, name
    exec(f"from jaggy import {{name}}")
assert jaggy.AuditResult is importlib.import_module("jaggy.engine").AuditResult
assert jaggy.LoadedModel is importlib.import_module("jaggy.models").LoadedModel
assert jaggy.check is importlib.import_module("jaggy._gate").check
for dotted in {LIST.read_text().split()!r}:
    module, _, name = dotted.rpartition(".")
    assert hasattr(importlib.import_module(module), name), dotted
for name in ("bias", "compare", "layers", "report", "train"):
    assert isinstance(getattr(jaggy, name), types.FunctionType), name
assert isinstance(jaggy.metrics, types.ModuleType) and jaggy.metrics.list_metrics()
print("ok")
"""
    assert fresh(code).strip() == "ok"
    assert set(top) == set(jaggy.__all__)


def test_an_unknown_attribute_is_an_attribute_error():
    code = """
import jaggy
for name in ("no_such_name", "_no_such_module"):
    try:
        getattr(jaggy, name)
    except AttributeError as exc:
        assert name in str(exc), exc
    else:
        raise SystemExit(name)
assert not hasattr(jaggy, "__wrapped__")
assert set(jaggy.__all__) <= set(dir(jaggy))
print("ok")
"""
    assert fresh(code).strip() == "ok"


def test_type_checkers_see_every_lazy_name():
    """Each name that `jaggy` loads on first use is imported under `typing.TYPE_CHECKING`
    from the module it is loaded from, so that type checkers and IDEs resolve it."""
    tree = ast.parse(Path(jaggy.__file__).read_text())
    seen = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "typing.TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom), ast.unparse(imp)
                for alias in imp.names:
                    seen[alias.name] = "jaggy" + "." * (imp.level > 0) + (imp.module or "")
    lazy = jaggy._LAZY_NAMES
    assert seen == lazy, (seen, lazy)
    eager = set(jaggy.__all__) - set(lazy)
    assert all(name in vars(jaggy) for name in eager), eager - set(vars(jaggy))
