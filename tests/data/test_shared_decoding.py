"""One image is decoded once per distinct JPEG scale and each source resized once, shared by
every protocol and size of the run; the sources, and so the rows, stay exactly those of a run
with each protocol alone (JPEG and PNG, images smaller and larger than the model's input)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from jaggy.data._decode import decode_sources
from jaggy.data.annotations._objects import ObjectBox
from jaggy.engine import AuditConfig, run_audit
from jaggy.models import Preprocessing
from jaggy.protocols import ProtocolOptions, build_protocols, list_protocols

SIZES = (172, 140, 117)
# Protocols an image folder can run (video reads sequences; bbox and canvas are checked at
# the source level, as they need annotations or make hundreds of keys).
AUDITED = [name for name in list_protocols() if name not in ("video", "bbox", "canvas", "mean")]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """JPEGs and PNGs larger than the 224 px input (a large JPEG is drafted at reduced
    scales for the smaller sources) and smaller than it."""
    folder = tmp_path_factory.mktemp("shared")
    rng = np.random.default_rng(7)
    base = Image.fromarray(rng.integers(0, 256, size=(24, 32, 3)).astype(np.uint8))
    base.resize((1300, 980), Image.Resampling.BICUBIC).save(folder / "a_big.jpg", quality=92)
    base.resize((150, 190), Image.Resampling.BICUBIC).save(folder / "b_small.jpg", quality=92)
    base.resize((520, 400), Image.Resampling.BICUBIC).save(folder / "c_big.png")
    base.resize((120, 100), Image.Resampling.BICUBIC).save(folder / "d_small.png")
    return folder


def every_request(input_size: int = 224):
    prep = Preprocessing(
        input_size=input_size,
        crop_pct=0.875,
        interpolation="bicubic",
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
    )
    names = [n for n in list_protocols() if n != "video"]
    protocols = build_protocols(names, prep, ProtocolOptions(steps=4, sizes=SIZES))
    return list({p.source().key: p.source() for p in protocols}.values())


@pytest.mark.parametrize("name", ["a_big.jpg", "b_small.jpg", "c_big.png", "d_small.png"])
def test_every_source_shared_equals_the_source_alone(photos, name):
    path = str(photos / name)
    requests = every_request()
    assert {r.kind for r in requests} >= {"square", "standard", "short", "short_side", "study"}
    assert {"box"} <= {r.kind for r in requests}
    width, height = Image.open(path).size
    box = ObjectBox(20.0, 10.0, 60.0, 50.0, width, height, "object")
    together, note = decode_sources(path, requests, "bicubic", 0.875, box)
    assert set(together) == {r.key for r in requests}
    for request in requests:
        alone, alone_note = decode_sources(path, [request], "bicubic", 0.875, box)
        assert alone_note == note
        assert torch.equal(alone[request.key], together[request.key]), request.key
        assert together[request.key].dtype == torch.uint8
        assert together[request.key].is_contiguous()


def test_a_large_jpeg_is_drafted_per_scale_not_resized_from_one_decode(photos):
    """The sources of a large JPEG really come from different scales, so sharing one decode
    across them would have changed them."""
    path = str(photos / "a_big.jpg")
    requests = every_request()
    small = next(r for r in requests if r.kind == "square" and r.side == 117)
    full = type(small)("square", 117, full_decode=True)
    sources, _ = decode_sources(path, [small, full], "bicubic", 0.875)
    assert not torch.equal(sources[small.key], sources[full.key])


def audit(photos, out, protocols):
    config = AuditConfig(
        model="py:tinynets:tiny_jumpy224",
        data=str(photos),
        protocols=protocols,
        sizes=list(SIZES[::2]),
        steps=3,
        consistency_k=2,
        batch_size=16,
        workers=0,
        threads=1,
        out=str(out),
    )
    run_audit(config, progress=False)
    rows = pq.read_table(out / "predictions.parquet").to_pandas()
    return rows.sort_values(["image_id", "protocol", "view"]).reset_index(drop=True)


def test_every_protocol_and_size_alone_gives_the_rows_of_the_shared_run(photos, tmp_path):
    """A large JPEG (drafted) and a PNG smaller than the input (every source enlarged); the
    source-level test above covers the other two images."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a_big.jpg", "d_small.png"):
        (folder / name).symlink_to(photos / name)
    together = audit(folder, tmp_path / "all", AUDITED)
    keys = set(together.protocol)
    assert {"black@172", "black@117", "inpaint@172", "crop", "study_crop"} <= keys
    assert together.image_id.nunique() == 2
    for name in AUDITED:
        alone = audit(folder, tmp_path / name, [name])
        part = together[together.protocol.isin(set(alone.protocol))].reset_index(drop=True)
        assert len(part) == len(alone) > 0, name
        for column in ("image_id", "protocol", "view", "dx", "dy", "top1"):
            assert (part[column] == alone[column]).all(), (name, column)
        assert np.array_equal(np.stack(part.top5_ids), np.stack(alone.top5_ids)), name
        np.testing.assert_array_equal(np.stack(part.top5_probs), np.stack(alone.top5_probs))
