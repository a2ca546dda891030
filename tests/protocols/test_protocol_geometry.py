"""Protocol geometry: what each view is, exactly, in pixels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from jaggy.errors import ArgumentError
from jaggy.models import Preprocessing
from jaggy.protocols import ProtocolOptions, build_protocols, list_protocols
from jaggy.protocols._paths import path_offsets

PREP = Preprocessing(input_size=32, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))


def one(name, **options):
    sizes = options.pop("sizes", (16,))
    return build_protocols([name], PREP, ProtocolOptions(sizes=sizes, **options))[0]


def source_for(protocol, seed=0):
    g = torch.Generator().manual_seed(seed)
    side = protocol.source().side
    if protocol.source().kind == "frames":  # a video: frames [V, 3, R, R]
        return torch.rand(protocol.n_views, 3, side, side, generator=g) * 2 - 1
    return torch.rand(3, side, side, generator=g) * 2 - 1


@pytest.mark.parametrize("path", ["diagonal", "horizontal", "vertical", "grid"])
def test_black_view_k_is_view_0_moved_by_k_pixels(path):
    p = one("black", path=path, steps=4)
    views = p.make_views(source_for(p), range(p.n_views))
    black = torch.tensor(PREP.black_value()).view(3, 1, 1)
    for k, params in enumerate(p.view_params()):
        dx, dy = int(params.dx), int(params.dy)
        assert (dx, dy) == path_offsets(path, 4)[k]
        moved = torch.roll(views[0], shifts=(dy, dx), dims=(1, 2))
        # the roll brings back background from the far border, which is background too
        assert torch.equal(views[k], moved), k
        assert torch.allclose(views[k][:, 0, 0], black.flatten())


def test_embed_backgrounds():
    black, mean = one("black"), one("mean")
    src = source_for(black)
    v_black = black.make_views(src, range(1))[0]
    v_mean = mean.make_views(src, range(1))[0]
    expected = torch.tensor([-0.4 / 0.2, -0.5 / 0.25, -0.6 / 0.3])
    assert torch.allclose(v_black[:, 0, 0], expected)
    assert torch.allclose(
        PREP.normalize(torch.zeros(3, 1, 1, dtype=torch.uint8)).flatten(), expected
    )
    assert torch.equal(v_mean[:, 0, 0], torch.zeros(3))
    # the image itself is pasted unchanged
    x0 = (32 - 16 - 9) // 2
    assert torch.equal(v_black[:, x0 : x0 + 16, x0 : x0 + 16], src)


def test_inpaint_keeps_image_and_fills_background_smoothly():
    p = one("inpaint")
    # the study inpaints 8-bit pixel values: sources come from uint8 images
    constant = torch.tensor([70, 200, 30], dtype=torch.uint8).view(3, 1, 1).expand(3, 16, 16)
    src = PREP.normalize(constant)
    views = p.make_views(src, range(3))
    black = PREP.normalize(torch.zeros(3, 1, 1, dtype=torch.uint8))
    # a constant image inpaints to the same constant, except at most 200 far pixels left black
    is_value = torch.isclose(views, src[:, :1, :1].expand_as(views), atol=1e-5).all(dim=1)
    is_black = torch.isclose(views, black.expand_as(views), atol=1e-5).all(dim=1)
    assert bool((is_value | is_black).all())
    assert int(is_black.flatten(1).sum(1).max()) <= 200
    g = PREP.normalize(
        (torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8)
    )
    v = p.make_views(g, range(1))[0]
    x0 = (32 - 16 - 9) // 2
    assert torch.equal(v[:, x0 : x0 + 16, x0 : x0 + 16], g)
    assert torch.isfinite(v).all()
    low = torch.minimum(g.amin(dim=(1, 2)), black.flatten())
    assert (v >= low.view(3, 1, 1) - 1e-5).all() and (
        v <= g.amax(dim=(1, 2)).view(3, 1, 1) + 1e-5
    ).all()


def test_crop_views_are_windows_of_one_resized_image():
    p = one("crop", steps=5)
    assert p.source().side == 32 + 5
    src = source_for(p)
    views = p.make_views(src, range(p.n_views))
    x0 = (37 - 32 - 4) // 2
    for k in range(5):
        assert torch.equal(views[k], src[:, x0 + k : x0 + k + 32, x0 + k : x0 + k + 32])
        # the window moves right/down, so the content moves left/up: dx = dy = -k
        assert (p.view_params()[k].dx, p.view_params()[k].dy) == (-k, -k)


def test_scale_sizes_grow_by_one_pixel_and_stay_centred():
    p = one("scale", steps=4, sizes=(12,))
    sizes = [v.size for v in p.view_params()]
    assert sizes == [12, 13, 14, 15]
    src = source_for(p)
    views = p.make_views(src, range(4))
    black = torch.tensor(PREP.black_value())
    for k, s in enumerate(sizes):
        o = (32 - s) // 2
        inner = views[k][:, o : o + s, o : o + s]
        expected = F.interpolate(
            src[None], size=(s, s), mode="bilinear", antialias=True, align_corners=False
        )[0]
        assert torch.allclose(inner, expected, atol=1e-6)
        assert torch.allclose(views[k][:, o - 1, o], black)  # just outside: background


def test_circular_equals_torch_roll():
    p = one("circular", path="grid", steps=3)
    src = source_for(p)
    views = p.make_views(src, range(p.n_views))
    for k, (dx, dy) in enumerate(path_offsets("grid", 3)):
        assert torch.equal(views[k], torch.roll(src, shifts=(dy, dx), dims=(1, 2)))


def test_grid_path_is_serpentine_with_unit_steps():
    offsets = path_offsets("grid", 4)
    assert len(offsets) == 16 and len(set(offsets)) == 16
    for a, b in zip(offsets, offsets[1:], strict=False):
        assert abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1


def test_embed_keys_carry_the_size_even_for_one_size():
    ps = build_protocols(
        ["black", "mean", "inpaint", "crop"], PREP, ProtocolOptions(sizes=(16,), steps=3)
    )
    assert [p.key for p in ps] == ["black@16", "mean@16", "inpaint@16", "crop"]
    ps = build_protocols(["black"], PREP, ProtocolOptions(sizes=(20, 16, 12), steps=3))
    assert [p.key for p in ps] == ["black@20", "black@16", "black@12"]


def test_bad_geometry_is_refused_with_the_largest_valid_size():
    with pytest.raises(ArgumentError, match="at most 23"):
        one("black", sizes=(30,), steps=10)
    with pytest.raises(ArgumentError, match="scale"):
        one("scale", sizes=(30,), steps=10)
    with pytest.raises(ArgumentError, match="unknown protocol"):
        build_protocols(["wobble"], PREP, ProtocolOptions())
    with pytest.raises(ArgumentError, match="at least 2"):
        one("crop", steps=1)
    with pytest.raises(ArgumentError, match="path"):
        one("crop", path="zigzag")


@pytest.mark.parametrize("name", list_protocols())
def test_every_protocol_smoke_shape_determinism(name):
    p = one(name, steps=3, sizes=(16,))
    src = source_for(p)
    n = len(p.view_params_for(src))
    a = p.make_views(src, range(n))
    b = p.make_views(src.clone(), range(n))
    assert a.shape == (n, 3, 32, 32)
    assert a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, b)
    # views by slices equal views all at once (the engine fills batches by slices)
    parts = torch.cat([p.make_views(src, range(0, 1)), p.make_views(src, range(1, n))])
    assert torch.allclose(parts, a, atol=1e-6)
    # non-contiguous source gives the same views
    nc = src.transpose(-2, -1).contiguous().transpose(-2, -1)
    assert torch.allclose(p.make_views(nc, range(n)), a, atol=1e-6)
    assert isinstance(p.params(), dict) and p.params()["key"] == p.key
