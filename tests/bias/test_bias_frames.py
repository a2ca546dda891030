"""The model's input frame: boxes through a hand-computed resize + centre crop, and through
jaggy's own standard source (the pixels the model sees)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jaggy.bias._frames import to_input_frame
from jaggy.data._decode import prepare_source
from jaggy.models import Preprocessing
from jaggy.protocols import SourceRequest

PREP = Preprocessing(input_size=224, crop_pct=0.875)


def test_landscape_box_by_hand():
    # 400 x 300 image: shorter side 300 -> floor(224 / 0.875) = 256, so the scale is 256/300
    # and the width becomes floor(256 * 400 / 300) = floor(341.33) = 341 (x scale 341/400).
    # Centre crop 224: left = round((341 - 224) / 2) = round(58.5) = 58 (half to even),
    # top = (256 - 224) / 2 = 16.
    frame = to_input_frame(
        *(np.array([v], dtype=float) for v in (100, 50, 200, 150, 400, 300)), PREP
    )
    sx, sy = 341 / 400, 256 / 300
    assert frame.x0[0] == pytest.approx(100 * sx - 58)
    assert frame.x1[0] == pytest.approx(200 * sx - 58)
    assert frame.y0[0] == pytest.approx(50 * sy - 16)
    assert frame.y1[0] == pytest.approx(150 * sy - 16)
    assert not frame.cut[0] and not frame.outside[0]


def test_portrait_boxes_cut_and_left_out_by_hand():
    # 300 x 600: width -> 256 (scale 256/300), height -> floor(256 * 600 / 300) = 512.
    # left = (256 - 224) / 2 = 16, top = (512 - 224) / 2 = 144.
    boxes = np.array(
        [
            [0, 0, 300, 600],  # the whole image: cut on every side
            [100, 10, 200, 100],  # above the window: y1 = 100 * 512/600 - 144 < 0
            [120, 280, 180, 320],  # inside
        ],
        dtype=float,
    )
    frame = to_input_frame(*boxes.T, np.full(3, 300.0), np.full(3, 600.0), PREP)
    assert frame.x0[0] == 0 and frame.x1[0] == 224 and frame.y0[0] == 0 and frame.y1[0] == 224
    assert frame.cut.tolist() == [True, False, False]
    assert frame.outside.tolist() == [False, True, False]
    s = 256 / 300
    assert frame.x0[2] == pytest.approx(120 * s - 16)
    assert frame.y0[2] == pytest.approx(280 * (512 / 600) - 144)


@pytest.mark.parametrize("size", [(300, 200), (200, 333), (257, 257)])
def test_mapping_matches_the_pixels_of_the_standard_source(size):
    """A white box drawn on a black image lands where the mapping says, to a pixel."""
    width, height = size
    x0, y0, x1, y1 = width * 0.3, height * 0.35, width * 0.62, height * 0.7
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[int(y0) : int(y1), int(x0) : int(x1)] = 255
    prep = Preprocessing(input_size=96, crop_pct=0.8, interpolation="nearest")
    source = prepare_source(
        Image.fromarray(array), SourceRequest("standard", 96), prep.interpolation, prep.crop_pct
    )
    ys, xs = np.nonzero(source[0].numpy() > 127)
    frame = to_input_frame(
        *(np.array([v], dtype=float) for v in (int(x0), int(y0), int(x1), int(y1))),
        np.array([float(width)]),
        np.array([float(height)]),
        prep,
    )
    assert xs.min() == pytest.approx(frame.x0[0], abs=1.0)
    assert xs.max() + 1 == pytest.approx(frame.x1[0], abs=1.0)
    assert ys.min() == pytest.approx(frame.y0[0], abs=1.0)
    assert ys.max() + 1 == pytest.approx(frame.y1[0], abs=1.0)


def test_crop_offset_rounds_half_to_even_like_torchvision():
    # 402 x 300: width floor(256 * 402 / 300) = floor(343.04) = 343; left = round(59.5) = 60
    frame = to_input_frame(
        *(np.array([v], dtype=float) for v in (100, 50, 200, 150, 402, 300)), PREP
    )
    assert frame.x0[0] == pytest.approx(100 * 343 / 402 - 60)
