"""A view depends only on the image, its protocol and the model's preprocessing: a protocol
alone and inside a larger run give identical rows, and the report re-creates the audited views."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from jaggy.data._decode import decode_sources
from jaggy.engine import AuditConfig, run_audit
from jaggy.protocols import SourceRequest
from jaggy.report._run import RunFolder
from jaggy.report._views import ViewMaker

ALL = ["crop", "black", "inpaint", "study_crop", "study_black", "zhang", "aps_roll", "circular"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A JPEG large enough that a smaller source is draft-decoded at a reduced scale, and a
    PNG (never drafted)."""
    folder = tmp_path_factory.mktemp("independent")
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, size=(30, 40, 3)).astype(np.uint8)
    Image.fromarray(small).resize((1200, 900), Image.Resampling.BICUBIC).save(
        folder / "big.jpg", quality=90
    )
    Image.fromarray(small).resize((300, 260), Image.Resampling.BICUBIC).save(folder / "p.png")
    return folder


def audit(photos, out, protocols):
    config = AuditConfig(
        model="py:tinynets:tiny_jumpy224",
        data=str(photos),
        protocols=protocols,
        sizes=[117],
        consistency_k=4,
        batch_size=16,
        workers=0,
        threads=1,
        out=str(out),
    )
    run_audit(config, progress=False)
    return pq.read_table(out / "predictions.parquet").to_pandas()


@pytest.fixture(scope="module")
def larger_run(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("larger") / "run"
    return out, audit(photos, out, ALL)


def test_a_source_does_not_depend_on_the_other_requests(photos):
    path = str(photos / "big.jpg")
    black = SourceRequest("square", 117)
    alone, _ = decode_sources(path, [black], "bilinear", 0.875)
    together, _ = decode_sources(
        path,
        [SourceRequest("square", 234), black, SourceRequest("study", 234, True)],
        "bilinear",
        0.875,
    )
    assert torch.equal(alone[black.key], together[black.key])


def test_a_protocol_alone_and_in_a_larger_run_give_identical_rows(photos, tmp_path, larger_run):
    alone = audit(photos, tmp_path / "alone", ["black"])
    together = larger_run[1]
    part = together[together.protocol == "black@117"].reset_index(drop=True)
    assert len(part) == len(alone) == 2 * 10
    for column in ("image_id", "view", "dx", "dy", "top1"):
        assert (part[column] == alone[column]).all(), column
    assert np.array_equal(np.stack(part.top5_ids), np.stack(alone.top5_ids))
    np.testing.assert_allclose(np.stack(part.top5_probs), np.stack(alone.top5_probs), atol=1e-6)


def test_the_reports_views_give_the_audited_top5(larger_run):
    from tinynets import tiny_jumpy224

    out, rows = larger_run
    maker = ViewMaker(RunFolder(out))
    assert maker.problem is None
    model = tiny_jumpy224().eval()
    for (image_id, key), group in rows.groupby(["image_id", "protocol"]):
        group = group.sort_values("view")
        views = maker.views(image_id, key, group.view.tolist())
        assert not isinstance(views, str), views
        with torch.no_grad():
            top5 = model(views).topk(5, dim=1).indices.numpy()
        assert np.array_equal(top5, np.stack(group.top5_ids)), (image_id, key)
