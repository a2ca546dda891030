"""`--graph`: run the model as a frozen TorchScript graph (or through ONNX Runtime, `_onnx`)
instead of eagerly.

`torch.jit.trace` records the model's operations once; `torch.jit.freeze` turns its weights
into constants, which lets `torch.jit.optimize_for_inference` fold batch norms into the
convolutions, drop shape arithmetic such as timm's dynamic same-padding, and pick the CPU's
fused convolution kernels. The frozen graph computes the same function as the eager model up
to float rounding (as between two batch sizes), and on a CPU it runs faster. It is built on a
deep copy, so the user's module is never changed.

When it cannot apply (`graph_problem`): tracing records what one call of `forward` did, so
 - forward hooks or pre-hooks (remedies such as aps and blurpool install them; features are
   taken by one) would run once at trace time and then never again;
 - `--compile` is another graph compiler over the same module;
 - `--dtype float16/bfloat16` runs through autocast, which a traced graph does not reliably
   keep;
 - it is built and checked on the CPU only: the speed it brings comes from folding and the
   CPU's fused kernels, and a GPU has neither the same kernels nor been measured here.
A run that asks for `--graph frozen` there is refused before any work; under `auto` such a
run never tries it. The ONNX Runtime graph (`--graph onnx`, `_onnx`) is an export of the same
trace, so the same rules apply to it, and it shares the check, the cache and the refusals.

A trace is made on a fixed input (seeded noise), never on the run's data, and then checked
on real views (`check_graph`): outputs beyond a tolerance relative to the eager outputs'
scale, or with another pattern of non-finite values, mean the trace froze something that
depends on the data (control flow, a Python number) and the run stays eager, with the
reason recorded. Because the trace input is fixed, every session and rank of a run builds
the same graph, so resumed and sharded runs reproduce the same rows bit for bit.
"""

from __future__ import annotations

import copy
import time
import warnings
import weakref

import torch
from torch import nn

from ..errors import ArgumentError
from ._threads import ENGINE_THREADS, torch_threads

GRAPHS = ("auto", "eager", "frozen", "onnx")
GRAPH_KINDS = ("onnx", "frozen")  # the graphs besides eager, in the order the probe tries them
TRACE_BATCH = 2  # not 1, so that a trace cannot bake in a squeezed batch dimension
TRACE_SEED = 0
# Outputs may differ by rounding only: |graph - eager| <= RTOL * max|eager| + ATOL
# (measured on efficientnet_lite0: 5e-6 on logits of magnitude ~20, i.e. 3e-7 relative).
RTOL = 1e-4
ATOL = 1e-6


def graph_problem(
    module: nn.Module, device: torch.device, dtype: str, *, compile: bool, hooked: bool
) -> str | None:
    """Why a traced graph (frozen or ONNX) cannot run this model here (None when it can).
    `hooked`: the run takes features from a hook on the model (see
    `jaggy.engine._measure.FeatureTap`)."""
    if compile:
        return "--compile already compiles the model (one graph compiler at a time)"
    if device.type != "cpu":
        return f"it is built for the CPU only (the run is on {device.type})"
    if dtype != "float32":
        return f"--dtype {dtype} runs through autocast, which a traced graph does not keep"
    if hooked:
        return "the features of --measure come from a hook on the model, which a graph drops"
    hooks = _hooked_modules(module)
    if hooks:
        return (
            f"the model has forward hooks ({', '.join(hooks[:3])}; remedies such as aps "
            "install them), which tracing would run once and then drop"
        )
    return None


def _hooked_modules(module: nn.Module) -> list[str]:
    from torch.nn.modules import module as module_globals

    names = [
        name or "the model"
        for name, m in module.named_modules()
        if m._forward_hooks or m._forward_pre_hooks
    ]
    if module_globals._global_forward_hooks or module_globals._global_forward_pre_hooks:
        names.insert(0, "global module hooks")
    return names


def check_graph_option(requested: str, problem: str | None) -> None:
    """Refuse `--graph frozen` or `--graph onnx` before any work when it cannot apply, and
    `--graph onnx` when ONNX Runtime is not installed."""
    if requested not in GRAPH_KINDS:
        return
    if problem is not None:
        raise ArgumentError(f"--graph {requested} cannot apply: {problem}; use --graph eager")
    if requested == "onnx":
        from ._onnx import INSTALL_HINT, onnx_missing

        missing = onnx_missing()
        if missing is not None:
            raise ArgumentError(
                f"--graph onnx needs ONNX Runtime: {missing}; install it ({INSTALL_HINT}) "
                "or use --graph frozen or eager"
            )


def trace_input(input_size: int) -> torch.Tensor:
    """The fixed input every graph is traced on: seeded noise [TRACE_BATCH, 3, R, R]."""
    generator = torch.Generator().manual_seed(TRACE_SEED)
    return torch.randn(TRACE_BATCH, 3, input_size, input_size, generator=generator)


def build_frozen(
    module: nn.Module, input_size: int, memory_format: torch.memory_format
) -> torch.jit.ScriptModule:
    """A frozen, inference-optimised TorchScript graph of a deep copy of `module` (eval
    mode), traced on seeded noise of shape [TRACE_BATCH, 3, R, R] in `memory_format`. The
    deprecation warnings of these torch.jit calls are silenced here only.

    Built on one CPU thread whoever calls it, so that the graph never depends on the
    caller's thread count (and tracing's small operations do not wait on a busy core:
    about 1 s for lite0 on one thread here, 3 s on two shared ones)."""
    example = trace_input(input_size).contiguous(memory_format=memory_format)
    twin = copy.deepcopy(module).eval().to(memory_format=memory_format)
    with warnings.catch_warnings(), torch.no_grad(), torch_threads(ENGINE_THREADS):
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(twin, example, check_trace=False)
        frozen = torch.jit.freeze(traced.eval())
        return torch.jit.optimize_for_inference(frozen)


def build_graph(
    kind: str, module: nn.Module, input_size: int, memory_format: torch.memory_format, threads: int
):
    """The graph `kind` ('frozen' or 'onnx') of `module`: a callable like the module."""
    if kind == "frozen":
        return build_frozen(module, input_size, memory_format)
    from ._onnx import build_onnx

    with torch_threads(ENGINE_THREADS):  # the export's small operations, as for tracing
        return build_onnx(module, trace_input(input_size), threads)


def compare_outputs(graph: torch.Tensor, eager: torch.Tensor) -> dict:
    """The check of one batch: {'ok', 'max_abs_diff', 'scale', 'tolerance'} (+ 'reason')."""
    if not isinstance(graph, torch.Tensor) or graph.shape != eager.shape:
        shape = tuple(graph.shape) if isinstance(graph, torch.Tensor) else type(graph)
        return {"ok": False, "reason": f"the graph returns {shape}, eager {tuple(eager.shape)}"}
    graph, eager = graph.detach().double(), eager.detach().double()
    finite = torch.isfinite(eager)
    if not torch.equal(finite, torch.isfinite(graph)):
        return {"ok": False, "reason": "NaN/Inf outputs differ from eager's"}
    scale = float(eager[finite].abs().max()) if bool(finite.any()) else 0.0
    diff = float((graph - eager)[finite].abs().max()) if bool(finite.any()) else 0.0
    tolerance = RTOL * scale + ATOL
    record = {"ok": diff <= tolerance, "max_abs_diff": diff, "scale": scale}
    record["tolerance"] = tolerance
    if not record["ok"]:
        record["reason"] = (
            f"outputs differ from eager by {diff:.3g} (tolerance {tolerance:.3g} at scale "
            f"{scale:.3g}): the trace froze something that depends on the input"
        )
    return record


class GraphCache:
    """This process's graphs, by model object, weights, kind, memory format (and threads, for
    ONNX Runtime's session): a later audit of the same unchanged model (or a resumed one)
    reuses the graph instead of tracing again. The weights hash is in the key, so a model
    changed in place is traced afresh."""

    def __init__(self):
        self._graphs: dict[tuple, tuple[weakref.ref, object]] = {}

    def get(self, module: nn.Module, key: tuple):
        found = self._graphs.get((id(module), *key))
        if found is None or found[0]() is not module:
            return None
        return found[1]

    def put(self, module: nn.Module, key: tuple, graph) -> None:
        for k in [k for k, (ref, _) in self._graphs.items() if ref() is None]:
            del self._graphs[k]  # models that are gone
        self._graphs[(id(module), *key)] = (weakref.ref(module), graph)


GRAPH_CACHE = GraphCache()


class ModelGraphs:
    """The graphs of one run's model, one per kind and memory format (ONNX Runtime's: one
    per thread count, in the contiguous format it takes), built when first needed (or found
    in this process's cache) and timed."""

    def __init__(self, module: nn.Module, input_size: int, weights: str | None):
        self.module = module
        self.input_size = input_size
        self.weights = weights
        self.graphs: dict[tuple, object] = {}
        self.build_seconds: dict[str, float] = {}

    @staticmethod
    def name(kind: str, memory_format: torch.memory_format) -> str:
        """'frozen/torch.channels_last', 'onnx': the graph's key in `build_seconds`."""
        return "onnx" if kind == "onnx" else f"{kind}/{memory_format}"

    def get(self, kind: str, memory_format: torch.memory_format, threads: int):
        if kind == "onnx":
            memory_format = torch.contiguous_format
        local = (kind, memory_format, threads if kind == "onnx" else None)
        graph = self.graphs.get(local)
        if graph is not None:
            return graph
        key = (self.weights, self.input_size, kind, str(memory_format), local[2])
        graph = GRAPH_CACHE.get(self.module, key) if self.weights else None
        started = time.perf_counter()
        if graph is None:
            graph = build_graph(kind, self.module, self.input_size, memory_format, threads)
            if self.weights:
                GRAPH_CACHE.put(self.module, key, graph)
        self.build_seconds[self.name(kind, memory_format)] = round(time.perf_counter() - started, 3)
        self.graphs[local] = graph
        return graph
