"""`--graph onnx`: the ONNX Runtime session jaggy builds (options, determinism, nothing
written to disk), the check that refuses a graph whose bits change between calls, and the
one-line error when ONNX Runtime is missing. The run-level tests it shares with the frozen
graph (rows, refusals, probe, SIGKILL resume, torchrun) are in test_engine_graph.py."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from test_engine_graph import MODULE, NormedNet, config, images  # noqa: F401 (fixture)
from test_engine_resume import subprocess_env

from jaggy.engine import _graph, run_audit
from jaggy.engine._graph import ModelGraphs
from jaggy.engine._setup import graph_kinds


def views(n: int = 5, seed: int = 1) -> torch.Tensor:
    """Inputs like normalised views (std 0.25 around 0.5), [n, 3, 32, 32]."""
    generator = torch.Generator().manual_seed(seed)
    return 0.5 + 0.25 * torch.randn(n, 3, 32, 32, generator=generator)


def onnx_graph(threads: int = 2):
    """A fresh ONNX Runtime graph of NormedNet (no weights hash: the process cache is not
    used, so every call exports and opens a new session)."""
    return ModelGraphs(NormedNet().eval(), 32, None).get("onnx", torch.contiguous_format, threads)


def test_the_session_runs_with_the_runs_threads_without_spinning():
    graph = onnx_graph(threads=2)
    options = graph.session.get_session_options()
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    import onnxruntime as ort

    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert graph.session.get_providers() == ["CPUExecutionProvider"]


@pytest.mark.parametrize("threads", [1, 2])
def test_the_same_batch_gives_the_same_bits_in_every_call_and_session(threads):
    x = views()
    first = onnx_graph(threads)
    with torch.inference_mode():
        calls = [first(x) for _ in range(3)]
        other = onnx_graph(threads)(x)  # another export and session, as in another process
        eager = NormedNet().eval()(x)
    assert calls[0].dtype == torch.float32 and calls[0].shape == eager.shape
    assert all(torch.equal(calls[0], c) for c in calls[1:]), "first call = later calls"
    assert torch.equal(calls[0], other), "every session of the same export gives the same bits"
    torch.testing.assert_close(calls[0], eager, rtol=1e-4, atol=1e-6)


def test_the_export_writes_no_file(tmp_path, monkeypatch):
    scratch, cwd = tmp_path / "tmp", tmp_path / "cwd"
    scratch.mkdir()
    cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.chdir(cwd)
    onnx_graph()
    assert not list(scratch.iterdir()) and not list(cwd.iterdir())


class Drifting:
    """A graph whose outputs move by 1e-7 (within the check's tolerance) at every call."""

    def __init__(self, module):
        self.module, self.calls = module, 0

    def __call__(self, x):
        self.calls += 1
        return self.module(x) + 1e-7 * self.calls


def test_a_graph_whose_bits_change_between_calls_is_refused(images, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(_graph, "build_graph", lambda kind, module, *args: Drifting(module))
    result = run_audit(config(images, tmp_path / "out", graph="onnx"), progress=False)
    check = result.manifest.graph_check
    assert result.manifest.graph == "eager" and not check["ok"]
    assert "later call on the same batch gave other bits" in check["reason"]


def test_graph_auto_tries_onnx_only_where_it_is_installed(monkeypatch):
    assert graph_kinds("auto", None) == ["onnx", "frozen"]
    assert graph_kinds("onnx", None) == ["onnx"] and graph_kinds("eager", None) == []
    assert graph_kinds("auto", "it is built for the CPU only") == []
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # an import that fails
    assert graph_kinds("auto", None) == ["frozen"]


def test_graph_onnx_without_onnxruntime_fails_before_any_work(images, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"  # makes `import onnxruntime` fail
        "from jaggy.cli import main\n"
        f"sys.exit(main(['audit', 'py:{MODULE}:normed', {str(images)!r}, '--graph', 'onnx', "
        f"'--out', {str(out)!r}, '--workers', '0', '--no-progress']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "--graph onnx needs ONNX Runtime" in lines[0]
    assert "pip install onnxruntime onnx" in lines[0]
    assert not out.exists(), "refused before any work"


def test_no_onnx_package_is_imported_by_a_run_that_does_not_use_it(images, tmp_path):  # noqa: F811
    """A fixed batch size with the default --graph auto runs eagerly and never imports
    ONNX Runtime (nor the exporter's onnx package)."""
    code = (
        "import sys\n"
        "from jaggy.cli import main\n"
        f"code = main(['audit', 'py:{MODULE}:normed', {str(images)!r}, '--batch-size', '5', "
        f"'--out', {str(tmp_path / 'out')!r}, '--workers', '0', '--no-progress', "
        "'--images', '2'])\n"
        "print(code, 'onnxruntime' in sys.modules, 'onnx' in sys.modules)\n"
    )
    words, stderr = _last_words(code)
    assert words == ["0", "False", "False"], stderr


def test_the_graph_check_of_an_onnx_run_names_its_graph_and_threads(images, tmp_path):  # noqa: F811
    result = run_audit(config(images, tmp_path / "out", graph="onnx", threads=2), progress=False)
    check = result.manifest.graph_check
    assert check["ok"] and check["graph"] == "onnx" and check["threads"] == 2
    assert check["memory_format"] == "contiguous" and check["build_seconds"] is not None
    assert Path(result.out / "run.json").is_file()


def test_an_onnx_run_does_not_import_the_onnx_package(images, tmp_path):  # noqa: F811
    """The exporter's last step (onnxscript functions of custom domains) imports onnx, ~2 s;
    with no such function registered it is skipped, and the run's graph still passes."""
    code = (
        "import sys\n"
        "from jaggy.engine import run_audit, AuditConfig\n"
        f"result = run_audit(AuditConfig(model='py:{MODULE}:normed', data={str(images)!r}, "
        f"graph='onnx', batch_size=5, out={str(tmp_path / 'out')!r}, workers=0, images=2), "
        "progress=False)\n"
        "print(result.manifest.graph, 'onnxruntime' in sys.modules, 'onnx' in sys.modules)\n"
    )
    words, stderr = _last_words(code)
    assert words == ["onnx", "True", "False"], stderr


def _last_words(code: str) -> tuple[list[str], str]:
    """The last three words `code` prints in a fresh interpreter, and the end of its stderr."""
    env = {**subprocess_env(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return done.stdout.split()[-3:], done.stderr[-2000:]


class OnnxscriptLike:
    """A symbolic function as onnxscript makes them: it carries a function proto."""

    def __call__(self, g, *args):
        raise AssertionError("no node of this domain is exported")

    def to_function_proto(self):
        raise AssertionError("not reached: the step is recorded, not run")


def test_the_exporters_onnxscript_step_runs_when_a_custom_domain_has_such_a_function(
    monkeypatch,
):
    from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

    calls = []
    monkeypatch.setattr(
        onnx_proto_utils,
        "_add_onnxscript_fn",
        lambda model_bytes, custom_opsets: calls.append(custom_opsets) or model_bytes,
    )
    onnx_graph()
    assert calls == [], "skipped: no custom domain holds an onnxscript function"
    torch.onnx.register_custom_op_symbolic("jaggytest::op", OnnxscriptLike(), 1)
    try:
        graph = onnx_graph()
    finally:
        torch.onnx.unregister_custom_op_symbolic("jaggytest::op", 1)
    assert len(calls) == 1, "run as torch wrote it"
    x = views()
    with torch.inference_mode():
        torch.testing.assert_close(graph(x), NormedNet().eval()(x), rtol=1e-4, atol=1e-6)
