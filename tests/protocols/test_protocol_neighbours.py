"""`neighbours`: the centre crop and its 8 one-pixel neighbours, against their definition."""

from __future__ import annotations

import torch

from jaggy.models import Preprocessing
from jaggy.protocols import ProtocolOptions, build_protocols
from jaggy.protocols.neighbours import NEIGHBOURS

R = 12


def protocol():
    (built,) = build_protocols(["neighbours"], Preprocessing(input_size=R), ProtocolOptions())
    return built


def test_views_are_the_centre_and_each_neighbour_in_disjoint_pairs():
    p = protocol()
    assert p.pairing == "disjoint" and p.n_views == 16
    assert p.source().side == R + 2
    source = torch.arange(3 * (R + 2) ** 2, dtype=torch.float32).reshape(3, R + 2, R + 2)
    views = p.make_views(source, range(16))
    centre = source[:, 1 : 1 + R, 1 : 1 + R]
    seen = set()
    for i, (dx, dy) in enumerate(NEIGHBOURS):
        params = p.view_params()
        assert (params[2 * i].dx, params[2 * i].dy) == (0, 0)
        assert (params[2 * i + 1].dx, params[2 * i + 1].dy) == (dx, dy)
        assert torch.equal(views[2 * i], centre)
        shifted = views[2 * i + 1]
        # content moved by (dx, dy): what the centre shows at (x, y) is now at (x + dx, y + dy)
        ys, xs = slice(max(dy, 0), R + min(dy, 0)), slice(max(dx, 0), R + min(dx, 0))
        yc, xc = slice(max(-dy, 0), R + min(-dy, 0)), slice(max(-dx, 0), R + min(-dx, 0))
        assert torch.equal(shifted[:, ys, xs], centre[:, yc, xc])
        assert not torch.equal(shifted, centre)  # new content entered at a border
        seen.add((dx, dy))
    assert seen == {(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)} - {(0, 0)}


def test_neighbours_are_realistic_shifts_not_circular_ones():
    p = protocol()
    source = torch.rand(3, R + 2, R + 2)
    views = p.make_views(source, range(16))
    right = views[1]  # dx = 1: the column entering on the left comes from the larger image
    assert torch.equal(right[:, :, 0], source[:, 1 : 1 + R, 0])
    assert not torch.equal(right[:, :, 0], views[0][:, :, -1])  # not wrapped around
