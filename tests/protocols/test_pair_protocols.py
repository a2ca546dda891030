"""`zhang` and `aps_roll` against transcriptions of the papers' consistency loops.

antialiased-cnns `main.py` (`validate_shift`): Resize(256), CenterCrop(256), ToTensor,
Normalize; per pair two offsets uniform in [0, 32)^2, windows input[:, :, oy:oy+224, ox:ox+224],
agreement of the two top-1 classes. truly_shift_invariant_cnns `main.py`: Resize(256),
CenterCrop(224); per pair two shifts uniform in [-32, 32)^2, torch.roll(input, (dy, dx),
dims=(2, 3)). The offsets come from jaggy's seeded draws; everything else is the papers'.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from jaggy.data._decode import decode_sources
from jaggy.engine import AuditConfig, run_audit
from jaggy.errors import ArgumentError
from jaggy.models import Preprocessing
from jaggy.protocols import ProtocolOptions, build_protocols

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
PREP = Preprocessing(input_size=224, interpolation="bilinear", mean=MEAN, std=STD)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pair_photos")
    rng = np.random.default_rng(0)
    for name, (w, h) in {"a.png": (300, 257), "b.jpg": (260, 390), "c.png": (256, 256)}.items():
        small = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
        Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC).save(folder / name)
    return folder


def zhang_input(path):
    image = Image.open(path).convert("RGB")
    pipeline = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(256),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    return pipeline(image)[None]


def aps_input(path):
    image = Image.open(path).convert("RGB")
    pipeline = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    return pipeline(image)[None]


def zhang_pairs(input, draws):
    return [
        (
            input[:, :, off0[0] : off0[0] + 224, off0[1] : off0[1] + 224],
            input[:, :, off1[0] : off1[0] + 224, off1[1] : off1[1] + 224],
        )
        for off0, off1 in draws
    ]


def aps_pairs(input, draws):
    return [
        (
            torch.roll(input, shifts=(int(s0[0]), int(s0[1])), dims=(2, 3)),
            torch.roll(input, shifts=(int(s1[0]), int(s1[1])), dims=(2, 3)),
        )
        for s0, s1 in draws
    ]


def agreement(model, pairs):
    with torch.no_grad():
        return float(
            np.mean([int(model(a).argmax(1)) == int(model(b).argmax(1)) for a, b in pairs])
        )


@pytest.mark.parametrize("name", ["zhang", "aps_roll"])
def test_pair_views_are_the_papers_inputs(photos, name):
    protocol = build_protocols([name], PREP, ProtocolOptions(pairs=6, seed=3))[0]
    reference_input, reference_pairs = {
        "zhang": (zhang_input, zhang_pairs),
        "aps_roll": (aps_input, aps_pairs),
    }[name]
    for path in sorted(photos.iterdir()):
        bound = protocol.for_image(path.name)
        assert bound.n_views == 12
        sources, _ = decode_sources(str(path), [bound.source()], "bilinear", 0.875)
        views = bound.make_views(PREP.normalize(sources[bound.source().key]), range(12))
        for i, (first, second) in enumerate(reference_pairs(reference_input(path), bound.draws)):
            assert torch.equal(views[2 * i], first[0]), (path.name, i)
            assert torch.equal(views[2 * i + 1], second[0]), (path.name, i)


def test_offsets_follow_the_papers_ranges_and_seed():
    zhang = build_protocols(["zhang"], PREP, ProtocolOptions(pairs=500, seed=1))[0]
    aps = build_protocols(["aps_roll"], PREP, ProtocolOptions(pairs=500, seed=1))[0]
    z, a = zhang.for_image("x.jpg").draws, aps.for_image("x.jpg").draws
    assert z.shape == a.shape == (500, 2, 2)
    assert z.min() == 0 and z.max() == 31
    assert a.min() == -32 and a.max() == 31
    # per image and per seed, never per position in the run
    assert np.array_equal(zhang.for_image("x.jpg").draws, z)
    assert not np.array_equal(zhang.for_image("y.jpg").draws, z)
    other = build_protocols(["zhang"], PREP, ProtocolOptions(pairs=500, seed=2))[0]
    assert not np.array_equal(other.for_image("x.jpg").draws, z)
    # scaled for other input sizes: a centre crop of R * 256 / 224, rolls up to 32 R / 224
    small = Preprocessing(input_size=112, mean=MEAN, std=STD)
    zhang112 = build_protocols(["zhang"], small, ProtocolOptions(pairs=300))[0]
    aps112 = build_protocols(["aps_roll"], small, ProtocolOptions(pairs=300))[0]
    assert zhang112.source().side == 128 and zhang112.for_image("x").draws.max() == 15
    assert aps112.for_image("x").draws.min() == -16
    with pytest.raises(ArgumentError, match="consistency-pairs"):
        build_protocols(["zhang"], PREP, ProtocolOptions(pairs=0))


def test_consistency_is_the_papers_agreement(photos, tmp_path):
    from tinynets import tiny_jumpy224

    config = AuditConfig(
        model="py:tinynets:tiny_jumpy224",
        data=str(photos),
        protocols=["zhang", "aps_roll", "crop"],
        consistency_k=5,
        seed=7,
        batch_size=6,
        workers=0,
        threads=1,
        out=str(tmp_path / "run"),
    )
    result = run_audit(config, progress=False)
    summary = json.loads((result.out / "summary.json").read_text())["protocols"]
    model = tiny_jumpy224().eval()
    options = ProtocolOptions(pairs=5, seed=7)
    for name, make_input, make_pairs in [
        ("zhang", zhang_input, zhang_pairs),
        ("aps_roll", aps_input, aps_pairs),
    ]:
        protocol = build_protocols([name], PREP, options)[0]
        expected = [
            agreement(model, make_pairs(make_input(p), protocol.for_image(p.name).draws))
            for p in sorted(photos.iterdir())
        ]
        entry = summary[name]
        assert entry["consistency"]["value"] == pytest.approx(np.mean(expected), abs=1e-12)
        assert entry["n_pairs"] == 5 * 3
        assert entry["p_top1_change"]["value"] == pytest.approx(1 - np.mean(expected))
        assert entry["path_consistency"]["value"] is None
    assert summary["crop"]["consistency"]["value"] is None
    assert summary["crop"]["path_consistency"]["value"] is not None
