"""Models whose outputs are NaN or Inf never look stable: such views are recorded, their
images' metrics are undefined, gates fail with a message, and a run where most views are
non-finite stops naming the cause."""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from misuse_conftest import TINY_AUDIT, run_jaggy, snapshot
from PIL import Image

from conftest import write_synthetic_images
from tinynets import TinyCNN

MODEL = '''
import torch
from tinynets import TinyCNN

class Poisoned(TinyCNN):
    """NaN (or Inf) logits for inputs that are white everywhere, or for every input."""

    def __init__(self, value, always=False):
        super().__init__()
        self.value, self.always = value, always

    def forward(self, x):
        logits = super().forward(x)
        hit = torch.ones(len(x), dtype=torch.bool) if self.always else x.amin(dim=(1, 2, 3)) > 1.9
        poisoned = logits.clone()
        poisoned[:, 3] = self.value
        return torch.where(hit[:, None], poisoned, logits)

def nan_on_white():
    return Poisoned(float("nan"))

def inf_on_white():
    return Poisoned(float("inf"))

def nan_always():
    return Poisoned(float("nan"), always=True)
'''


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    write_synthetic_images(tmp_path / "imgs", 2, side=40)
    Image.fromarray(np.full((40, 40, 3), 255, np.uint8)).save(tmp_path / "imgs" / "white.png")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "poisoned_models.py").write_text(MODEL)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    yield tmp_path
    sys.modules.pop("poisoned_models", None)


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


@pytest.mark.parametrize("factory", ["nan_on_white", "inf_on_white"])
def test_non_finite_views_are_recorded_and_make_metrics_undefined(capsys, workspace, factory):
    before = snapshot(workspace / "imgs")
    code, err = audit(
        capsys,
        workspace,
        f"py:poisoned_models:{factory}",
        "--fail-under",
        "p_top1_change=0.5",
        "--fail-under",
        "crop:consistency=0.1",
    )
    assert code == 1, err
    assert "crop p_top1_change is undefined (2 view(s) gave NaN or Inf outputs; see " in err
    assert "crop consistency is undefined (2 view(s)" in err
    assert "2 view(s) gave NaN or Inf outputs: the metrics of their protocols are undefined" in err
    out = workspace / "out"
    table = pq.read_table(out / "predictions.parquet", columns=["image_id", "finite"])
    finite = dict(zip(table["image_id"].to_pylist(), table["finite"].to_pylist(), strict=False))
    assert finite == {"img000.png": True, "img001.png": True, "white.png": False}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["nonfinite_views"] == {
        "count": 2,
        "examples": [
            {"image_id": "white.png", "protocol": "crop", "view": 0},
            {"image_id": "white.png", "protocol": "crop", "view": 1},
        ],
    }
    summary = json.loads((out / "summary.json").read_text())["protocols"]["crop"]
    assert summary["n_nonfinite_views"] == 2
    assert summary["p_top1_change"]["value"] is None  # never "stable"
    assert summary["consistency"]["value"] is None
    assert snapshot(workspace / "imgs") == before


def test_a_run_of_mostly_non_finite_views_stops_naming_the_cause(capsys, workspace):
    code, err = audit(capsys, workspace, "py:poisoned_models:nan_always")
    assert code == 2
    assert (
        "the model outputs NaN or Inf for 6 of 6 views so far (first: img000.png, crop view 0); "
        "no metric is defined on such views" in err
    )
    assert len(err.strip().splitlines()) == 1
    assert not (workspace / "out" / "summary.json").exists()


def test_nan_weights_in_a_checkpoint_are_refused_before_any_work(capsys, workspace):
    state = TinyCNN().state_dict()
    state["head.weight"][0, 0] = float("nan")
    torch.save(state, workspace / "broken.pt")
    before = snapshot(workspace)
    code, err = audit(
        capsys, workspace, "py:tinynets:tiny", "--checkpoint", workspace / "broken.pt"
    )
    assert code == 2
    assert (
        "1 weight tensor(s) hold NaN or Inf (head.weight); every output would be undefined" in err
    )
    assert not (workspace / "out").exists()
    assert snapshot(workspace) == before
