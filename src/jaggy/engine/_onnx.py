"""`--graph onnx`: run the model through ONNX Runtime, on an export of a copy of it.

`torch.onnx.export` (the TorchScript-based exporter, `dynamo=False`) traces a deep copy of
the model in eval mode on fixed seeded noise, in memory, with a dynamic batch dimension;
ONNX Runtime's CPU session then optimises the graph (graph optimisation level ALL: batch
norms folded, convolutions fused with their activations and run in its own blocked layout)
and runs it. On this project's 2-core AVX2 CPU that runs efficientnet_lite0 at 1.5-1.8x its
eager channels-last speed and 1.2-1.5x the frozen TorchScript graph's, with outputs equal to
eager ones up to float rounding (max |logit difference| 8e-6 at a logit scale of 7.4).

The session gets the run's thread count for its own intra-op thread pool (one inter-op
thread, sequential execution) and those threads do not spin-wait after a call
(`session.intra_op.allow_spinning` 0): a spinning pool would hold the cores that the engine's
own work between two forwards needs. The input is the batch as a C-contiguous float32 NCHW
array: memory format is not a dimension of this graph (a run records it as contiguous).

Like the frozen graph (`_graph`), it applies only where tracing is faithful (CPU, float32, no
`--compile`, no forward hooks, no features taken by a hook) and is checked against eager on
the run's first real views before use. ONNX Runtime's CPU kernels give the same bits for
the same input at a fixed thread count (the check verifies it), and every process exports
the same model on the same noise, so resumed and sharded runs reproduce the same rows.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
import warnings

import numpy as np
import torch
from torch import nn

OPSET = 17
INPUT, OUTPUT = "views", "outputs"
INSTALL_HINT = "pip install onnxruntime onnx"


def onnx_missing() -> str | None:
    """Why ONNX Runtime cannot run here (None when it can): onnxruntime must import, and the
    onnx package that torch's exporter may need must be installed (importing it costs ~2 s
    here, its ml_dtypes extension, and most exports never do: `_exported_without_onnx`)."""
    try:
        import onnxruntime  # noqa: F401
    except Exception as exc:  # not installed, or a broken install
        return f"the onnxruntime package cannot be imported ({type(exc).__name__}: {exc})"
    if not onnx_importable():
        return "the onnx package is not installed"
    return None


def onnx_importable() -> bool:
    """Whether both packages are installed, without importing them (for `--graph auto`,
    which imports them only when the probe tries the graph)."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(n) is not None for n in ("onnxruntime", "onnx"))
    except (ImportError, ValueError):  # a module set to None, or without a spec
        return False


class OnnxGraph:
    """A callable like the model: [B, 3, R, R] float32 CPU tensor -> the output tensor."""

    def __init__(self, session, threads: int, model_bytes: int):
        self.session = session
        self.threads = threads
        self.model_bytes = model_bytes

    def __call__(self, views: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(views.detach().numpy(), dtype=np.float32)
        (output,) = self.session.run([OUTPUT], {INPUT: array})
        return torch.from_numpy(output)


def export_bytes(module: nn.Module, example: torch.Tensor) -> bytes:
    """The ONNX model of a deep copy of `module` (eval mode), traced on `example`, in memory.
    The exporter's deprecation and tracer warnings are silenced around this call only."""
    twin = copy.deepcopy(module).eval().to(memory_format=torch.contiguous_format)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), _exporter_log_silenced():
        warnings.simplefilter("ignore")
        with _exported_without_onnx():
            torch.onnx.export(
                twin,
                (example.contiguous(),),
                buffer,
                dynamo=False,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                opset_version=OPSET,
                # ONNX Runtime's session folds the constants (batch norms into convolutions)
                # itself at optimisation ALL; folding them in the exporter too cost ~0.3 s
                # per export here and ran no faster
                do_constant_folding=False,
            )
    return buffer.getvalue()


# Domains whose nodes the exporter's last step leaves alone (torch's own operators).
_TORCH_DOMAINS = frozenset({"aten", "prim", "onnx"})


@contextlib.contextmanager
def _exported_without_onnx():
    """The legacy exporter's last step (`_add_onnxscript_fn`) imports the onnx package and
    parses the exported model only to add the onnxscript functions (`to_function_proto`) of
    symbolic functions registered in other domains. Where none is registered (torchvision's
    are plain functions) that step changes nothing, and the import alone cost ~2 s per
    process here (onnx imports ml_dtypes), so it is skipped; else it runs as torch wrote it."""
    try:
        from torch.onnx._internal.torchscript_exporter import onnx_proto_utils, registration
    except ImportError:  # another torch: its exporter as it is
        yield
        return
    original = getattr(onnx_proto_utils, "_add_onnxscript_fn", None)
    if original is None:
        yield
        return

    def add_onnxscript_functions(model_bytes, custom_opsets):
        for name in registration.registry.all_functions():
            domain = name.split("::")[0]
            if domain in _TORCH_DOMAINS:
                continue
            group = registration.registry.get_function_group(name)
            function = group.get(custom_opsets.get(domain, 1)) if group else None
            if hasattr(function, "to_function_proto"):
                return original(model_bytes, custom_opsets)
        # (torch's step would also refuse a node of a registered domain without a function
        # at that opset; such a node fails ONNX Runtime's session instead: the run stays eager)
        return model_bytes

    onnx_proto_utils._add_onnxscript_fn = add_onnxscript_functions
    try:
        yield
    finally:
        onnx_proto_utils._add_onnxscript_fn = original


@contextlib.contextmanager
def _exporter_log_silenced():
    """The exporter's C++ log off around the export: torch's legacy exporter switches it on
    whatever it was (and leaves it on), and on a failure it prints the whole graph to the
    standard output. The failure's reason is kept in the record instead."""
    enabled = torch._C._jit_is_onnx_log_enabled()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        yield
    finally:
        for fd, copy_of in zip((1, 2), saved, strict=True):
            os.dup2(copy_of, fd)
            os.close(copy_of)
        torch._C._jit_set_onnx_log_enabled(enabled)


def session_options(threads: int, spinning: bool = False):
    """The session's options: `threads` intra-op threads that sleep between calls, one
    inter-op thread, sequential execution, every graph optimisation."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3  # errors only: its warnings would reach the user's terminal
    return options


def build_onnx(module: nn.Module, example: torch.Tensor, threads: int) -> OnnxGraph:
    """An ONNX Runtime CPU session of `module` exported on `example`, on `threads` threads."""
    import onnxruntime as ort

    model = export_bytes(module, example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = ort.InferenceSession(
            model, session_options(threads), providers=["CPUExecutionProvider"]
        )
    return OnnxGraph(session, threads, len(model))
