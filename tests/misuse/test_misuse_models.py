"""Misused model specs and checkpoints: one line naming the cause, exit 2, before any image is
touched, and the user's files unchanged."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from misuse_conftest import TINY_AUDIT, run_jaggy, snapshot

from conftest import write_synthetic_images
from tinynets import TinyCNN

TINY = "from tinynets import TinyCNN\n"


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    write_synthetic_images(tmp_path / "imgs", 2, side=40)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    (tmp_path / "code").mkdir()
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("usermodel_")]:
        del sys.modules[name]


def audit(capsys, workspace, model, *extra):
    return run_jaggy(
        capsys,
        "audit",
        model,
        workspace / "imgs",
        "--protocol",
        "crop",
        "--out",
        workspace / "out",
        *TINY_AUDIT,
        *extra,
    )


def assert_refused(code, err, message, workspace, before):
    assert code == 2
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (workspace / "out").exists()
    assert snapshot(workspace) == before


CHECKPOINTS = {
    "tensor": (lambda p: torch.save(torch.zeros(3), p), "holds a Tensor, not a state dict"),
    "list": (lambda p: torch.save([torch.zeros(3)], p), "holds a list, not a state dict"),
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "text": (
        lambda p: p.write_text("hello, I am not a checkpoint\n"),
        "is not a file written by torch.save (neither a zip archive nor a pickle)",
    ),
    "truncated": (
        lambda p: (torch.save(TinyCNN().state_dict(), p), p.write_bytes(p.read_bytes()[:300])),
        "with weights_only=True (RuntimeError: PytorchStreamReader failed",
    ),
    "dict-of-numbers": (
        lambda p: torch.save({"head.weight": 3}, p),
        "is not a state dict: entry 'head.weight' holds a int, not a tensor",
    ),
    "other-model": (
        lambda p: torch.save({"fc.weight": torch.zeros(2, 2)}, p),
        "does not fit the model: Error(s) in loading state_dict for TinyCNN: Missing key(s)",
    ),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_a_checkpoint_that_is_not_a_state_dict(capsys, workspace, case):
    write, message = CHECKPOINTS[case]
    checkpoint = workspace / "model.pt"
    write(checkpoint)
    before = snapshot(workspace)
    code, err = audit(capsys, workspace, "py:tinynets:tiny", "--checkpoint", checkpoint)
    assert_refused(code, err, message, workspace, before)
    assert "(())" not in err and "(); " not in err  # the old empty message


MODULES = {
    "import-error": (
        "raise RuntimeError('no GPU found, giving up')\n",
        "make",
        "importing 'usermodel_import_error' for py:usermodel_import_error:make failed: "
        "RuntimeError: no GPU found, giving up",
    ),
    "syntax-error": ("def make(:\n", "make", "failed: SyntaxError: "),
    "exits-on-import": ("import sys\nsys.exit(3)\n", "make", "failed: SystemExit: 3"),
    "factory-raises": (
        "def make():\n    raise ValueError('weights missing')\n",
        "make",
        "py:usermodel_factory_raises:make raised ValueError: weights missing; fix the factory",
    ),
    "factory-needs-args": (
        TINY + "def make(width, depth=2):\n    return TinyCNN(width=width)\n",
        "make",
        "py:usermodel_factory_needs_args:make needs argument(s) width, but jaggy calls it "
        "with none",
    ),
    "returns-tuple": (
        TINY
        + textwrap.dedent(
            """
            class Both(TinyCNN):
                def forward(self, x):
                    return super().forward(x), x.mean()

            def make():
                return Both()
            """
        ),
        "make",
        "the model returns a tuple of 2; jaggy needs one tensor of [batch, classes] logits",
    ),
    "forward-fails": (
        TINY
        + textwrap.dedent(
            """
            class Broken(TinyCNN):
                def forward(self, x):
                    raise KeyError('head')

            def make():
                return Broken()
            """
        ),
        "make",
        "the model fails on a [1, 3, 32, 32] input: KeyError: 'head'",
    ),
}

PREPROCESSING = {
    "zero-std": (
        "{'input_size': 32, 'std': (0.0, 0.2, 0.2)}",
        "std must be positive in every channel (got (0.0, 0.2, 0.2)); a zero std divides by zero",
    ),
    "unknown-key": ("{'input_size': 32, 'size': 32}", "unknown key(s) 'size'; the keys are"),
    "not-a-dict": ("[32, 0.875]", "jaggy_preprocessing is a list; make it a dict"),
    "two-means": ("{'input_size': 32, 'mean': (0.5, 0.5)}", "mean must be 3 finite numbers"),
    "bad-interpolation": (
        "{'input_size': 32, 'interpolation': 'smooth'}",
        "interpolation must be one of bilinear, bicubic",
    ),
    "size-text": ("{'input_size': '32'}", "input_size must be a whole number of px"),
    "crop-zero": ("{'input_size': 32, 'crop_pct': 0}", "crop_pct must be a number in (0, 1]"),
}
for _case, (_value, _message) in PREPROCESSING.items():
    MODULES[f"preprocessing-{_case}"] = (
        TINY
        + "def make():\n    model = TinyCNN()\n"
        + f"    model.jaggy_preprocessing = {_value}\n    return model\n",
        "make",
        _message,
    )


@pytest.mark.parametrize("case", list(MODULES))
def test_user_model_code_that_misbehaves(capsys, workspace, case):
    source, factory, message = MODULES[case]
    name = "usermodel_" + case.replace("-", "_")
    (workspace / "code" / f"{name}.py").write_text(source)
    before = snapshot(workspace)
    code, err = audit(capsys, workspace, f"py:{name}:{factory}")
    assert_refused(code, err, message, workspace, before)


def test_a_good_user_model_still_loads(capsys, workspace):
    (workspace / "code" / "usermodel_good.py").write_text(
        TINY + "def make(width=8):\n    return TinyCNN(width=width)\n"
    )
    code, err = audit(capsys, workspace, "py:usermodel_good:make")
    assert code == 0, err
