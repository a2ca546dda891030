"""jaggy: measure, explain and reduce how image classifiers change their answer under tiny
image transformations (Azulay & Weiss, JMLR 2019).

    import jaggy
    result = jaggy.audit("jaggy:efficientnet_lite0", samples=True, protocols=["crop", "black"])
    jaggy.report(result, "report.html")
    jaggy.check(result, "black@140:p_top1_change<=0.25").passed

`jaggy.layers`, `jaggy.compare`, `jaggy.report`, `jaggy.bias` and `jaggy.train` are functions here and subpackages too:
`from jaggy.report import write_report` imports from the subpackage, `jaggy.report(...)` calls
the function.
"""

__version__ = "0.1.0"

# `_api` imports the subpackages named like a function first, so that the functions bound
# here keep those names: Python sets a package's attribute to a subpackage only when it
# first imports it.
from ._api import (  # noqa: E402
    AuditResult,
    BiasResult,
    CheckResult,
    CompareResult,
    LayersResult,
    ReportResult,
    audit,
    bias,
    check,
    compare,
    layers,
    report,
    train,
)
from .errors import JaggyError  # noqa: E402
from .models import LoadedModel, Preprocessing, load_model  # noqa: E402

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
