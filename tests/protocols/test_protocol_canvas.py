"""`canvas`: each key is one cell of positions; together the cells visit every position once."""

from __future__ import annotations

import pytest
import torch

from jaggy.errors import ArgumentError
from jaggy.models import Preprocessing
from jaggy.protocols import ProtocolOptions, build_protocols
from jaggy.protocols.canvas import CELL, parse_canvas_key

PREP = Preprocessing(input_size=20, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def test_cells_tile_every_position_once_in_serpentine_order():
    protocols = build_protocols(["canvas"], PREP, ProtocolOptions(sizes=(11, 8)))
    for size in (11, 8):
        mine = [p for p in protocols if p.size == size]
        positions = [(v.dx, v.dy) for p in mine for v in p.view_params()]
        side = 20 - size + 1
        assert sorted(positions) == sorted((x, y) for x in range(side) for y in range(side))
        for p in mine:
            views = p.view_params()
            assert all(v.size == size for v in views)
            for a, b in zip(views, views[1:], strict=False):
                assert abs(a.dx - b.dx) + abs(a.dy - b.dy) == 1
            assert parse_canvas_key(p.key) == (size, p.cell_x, p.cell_y)
            assert p.cell_x % CELL == 0 and p.cell_y % CELL == 0


def test_view_is_the_image_pasted_at_its_position_on_black():
    (p, *_rest) = build_protocols(["canvas"], PREP, ProtocolOptions(sizes=(8,)))
    source = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    views = p.make_views(source, range(p.n_views))
    black = torch.tensor(PREP.black_value()).view(3, 1, 1)
    for view, params in zip(views, p.view_params(), strict=True):
        x, y = int(params.dx), int(params.dy)
        expected = black.expand(3, 20, 20).clone()
        expected[:, y : y + 8, x : x + 8] = source
        assert torch.equal(view, expected)


def test_parse_canvas_key_ignores_other_keys_and_sizes_are_checked():
    assert parse_canvas_key("black@140") is None
    assert parse_canvas_key("canvas@14/x8y12") == (14, 8, 12)
    with pytest.raises(ArgumentError, match="does not fit"):
        build_protocols(["canvas"], PREP, ProtocolOptions(sizes=(21,)))
