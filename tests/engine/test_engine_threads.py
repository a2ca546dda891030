"""The engine's own tensor work runs on one CPU thread and the forward on the run's threads:
no number changes, except the last bit of FFT-made views (`fourier`), which now no longer
depend on the thread count."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import torch

import jaggy.engine._threads as engine_threads
from conftest import write_synthetic_images
from jaggy.engine import AuditConfig, run_audit

PROTOCOLS = ["crop", "black", "scale", "circular", "fourier", "zhang", "rotate"]


def audit(folder, out):
    config = AuditConfig(
        model="py:tinynets:tiny_jumpy1000",
        data=str(folder),
        protocols=PROTOCOLS,
        steps=4,
        sizes=[20],
        consistency_k=2,
        batch_size=8,
        workers=0,
        threads=2,
        out=str(out),
    )
    run_audit(config, progress=False)
    return pq.read_table(out / "predictions.parquet").to_pandas()


def test_rows_are_the_same_whatever_threads_make_the_views(tmp_path, monkeypatch):
    folder = tmp_path / "images"
    write_synthetic_images(folder, 3, side=56, seed=5)
    before = torch.get_num_threads()
    one = audit(folder, tmp_path / "one")
    assert torch.get_num_threads() == before
    monkeypatch.setattr(engine_threads, "ENGINE_THREADS", 2)
    two = audit(folder, tmp_path / "two")
    assert len(one) == len(two) > 0
    fft = one.protocol == "fourier"
    np.testing.assert_allclose(
        np.stack(one[fft].top5_probs), np.stack(two[fft].top5_probs), rtol=1e-5
    )
    one, two = one[~fft], two[~fft]
    for column in ("image_id", "protocol", "view", "top1", "ref_class"):
        assert (one[column] == two[column]).all(), column
    for column in ("top5_probs", "top5_ids"):
        np.testing.assert_array_equal(np.stack(one[column]), np.stack(two[column]))
    np.testing.assert_array_equal(one.p_ref.to_numpy(), two.p_ref.to_numpy())
    np.testing.assert_array_equal(one.p_prev_top1.to_numpy(), two.p_prev_top1.to_numpy())


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with engine_threads.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
