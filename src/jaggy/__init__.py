"""jaggy: measure, explain and reduce how image classifiers change their answer under tiny
image transformations (Azulay & Weiss, JMLR 2019).

    import jaggy
    result = jaggy.audit("jaggy:efficientnet_lite0", samples=True, protocols=["crop", "black"])
    jaggy.report(result, "report.html")
    jaggy.check(result, "black@140:p_top1_change<=0.25").passed

`jaggy.layers`, `jaggy.compare`, `jaggy.report`, `jaggy.bias` and `jaggy.train` are functions here and subpackages too:
`from jaggy.report import write_report` imports from the subpackage, `jaggy.report(...)` calls
the function.

Importing jaggy is quick: the names below and the subpackages (`jaggy.metrics`, ...) are
loaded on first use (PEP 562), so that `jaggy --help` and a bad argument cost no torch,
matplotlib or pandas import.
"""

from __future__ import annotations

import importlib
import sys
import types
import typing

__version__ = "0.1.0"

from ._api import ReportResult, audit, bias, compare, layers, report, train  # noqa: E402
from .errors import JaggyError  # noqa: E402

if typing.TYPE_CHECKING:
    from ._gate import CheckResult, check
    from .bias import BiasResult
    from .compare import CompareResult
    from .engine import AuditResult
    from .layers import LayersResult
    from .models import LoadedModel, Preprocessing, load_model

__all__ = [
    "AuditResult",
    "BiasResult",
    "CheckResult",
    "CompareResult",
    "JaggyError",
    "LayersResult",
    "LoadedModel",
    "Preprocessing",
    "ReportResult",
    "__version__",
    "audit",
    "bias",
    "check",
    "compare",
    "layers",
    "load_model",
    "report",
    "train",
]

# Public names that live in a subpackage: the module that defines each.
_LAZY_NAMES = {
    "AuditResult": "jaggy.engine",
    "BiasResult": "jaggy.bias",
    "CheckResult": "jaggy._gate",
    "CompareResult": "jaggy.compare",
    "LayersResult": "jaggy.layers",
    "check": "jaggy._gate",
    "LoadedModel": "jaggy.models",
    "Preprocessing": "jaggy.models",
    "load_model": "jaggy.models",
}
# The functions named like a subpackage (see the docstring).
_FUNCTIONS = frozenset({"bias", "compare", "layers", "report", "train"})


def __getattr__(name: str):
    """`jaggy.LoadedModel`, `jaggy.metrics`, ...: imported on first use."""
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The jaggy module. Python binds a subpackage to its parent's attribute when it first
    imports it; with subpackages imported on first use, that would replace the function
    `jaggy.report` by the module `jaggy.report`, so the functions keep their names."""

    def __setattr__(self, name: str, value) -> None:
        if name in _FUNCTIONS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
