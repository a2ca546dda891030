"""The inpainting computed only where a round can change a pixel against the rounds over whole
canvases (`inpaint_reference`), on geometries chosen to hit every branch: images touching the
canvas border, black pixels inside the image and along its edges, all-black images, masks that
are not rectangles, views of different geometry in one call, odd non-square canvases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inpaint_reference import reference_inpaint, reference_make_views

from jaggy.models import Preprocessing
from jaggy.protocols import ProtocolOptions, _inpaint, build_protocols
from jaggy.protocols._inpaint import CHUNK, inpaint_pasted
from jaggy.protocols.embed import inpaint

# float64 sums of 0..255 values: the same operations in the same order give the same numbers;
# the tolerance only allows for a last-bit difference on another CPU's vector code.
ATOL = 1e-12


def random_image(rng, h: int, w: int, black: str) -> np.ndarray:
    image = rng.integers(1, 256, size=(3, h, w)).astype(np.float64)
    if black == "all":
        image[:] = 0
    elif black == "scattered":
        image[:, rng.random((h, w)) < 0.15] = 0
    elif black == "edges":  # black rows and columns along the image's border: notches
        image[:, : max(1, h // 4), : max(1, w // 2)] = 0
        image[:, :, w - max(1, w // 5) :] = 0
    elif black == "block":
        image[:, h // 3 : h // 3 + max(1, h // 3), w // 4 : w // 4 + max(1, w // 2)] = 0
    elif black == "channel":  # zero in two channels only: not black
        image[1:, :, : w // 2] = 0
    return image


def pasted(rng, hw: tuple[int, int], views: int, black_kinds=None):
    """`views` canvases H x W, each with its own image size, position and black pattern."""
    h, w = hw
    canvas = np.zeros((views, 3, h, w))
    mask = np.zeros((views, 1, h, w))
    for v in range(views):
        s_h, s_w = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        y = int(rng.choice([0, h - s_h, rng.integers(0, h - s_h + 1)]))
        x = int(rng.choice([0, w - s_w, rng.integers(0, w - s_w + 1)]))
        kinds = black_kinds or ["none", "scattered", "edges", "block", "all", "channel"]
        canvas[v, :, y : y + s_h, x : x + s_w] = random_image(rng, s_h, s_w, rng.choice(kinds))
        mask[v, :, y : y + s_h, x : x + s_w] = 1
    return torch.from_numpy(canvas), torch.from_numpy(mask)


def check(canvas: torch.Tensor, mask: torch.Tensor) -> None:
    expected = reference_inpaint(canvas, mask)
    got = inpaint(canvas, mask)
    assert got.dtype == canvas.dtype and got.shape == canvas.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=ATOL)
    # which pixels are still black decides every later round: it must agree exactly
    assert torch.equal(got.sum(dim=1) == 0, expected.sum(dim=1) == 0)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("hw", [(40, 40), (37, 53), (61, 29)])
def test_random_geometries_equal_the_whole_canvas_rounds(seed, hw):
    rng = np.random.default_rng(1000 * seed + hw[0])
    check(*pasted(rng, hw, views=int(rng.integers(1, 5))))


@pytest.mark.parametrize(
    ("y", "x", "s_h", "s_w"),
    [
        (0, 0, 12, 12),  # a corner
        (28, 30, 12, 10),  # the opposite corner
        (0, 5, 40, 9),  # top to bottom: no band above or below
        (7, 0, 9, 40),  # left to right
        (0, 0, 40, 40),  # the whole canvas: no rounds can fill anything, black pixels stay
        (15, 15, 1, 1),  # a single pixel
    ],
)
@pytest.mark.parametrize("black", ["none", "scattered", "edges", "all"])
def test_images_at_the_canvas_border(y, x, s_h, s_w, black):
    rng = np.random.default_rng(y * 100 + x)
    canvas = np.zeros((1, 3, 40, 40))
    mask = np.zeros((1, 1, 40, 40))
    canvas[0, :, y : y + s_h, x : x + s_w] = random_image(rng, s_h, s_w, black)
    mask[0, :, y : y + s_h, x : x + s_w] = 1
    check(torch.from_numpy(canvas), torch.from_numpy(mask))


def test_masks_that_are_not_rectangles_and_pixels_outside_them():
    rng = np.random.default_rng(5)
    canvas = torch.from_numpy(rng.integers(0, 256, size=(4, 3, 45, 38)).astype(np.float64))
    mask = torch.zeros(4, 1, 45, 38, dtype=torch.float64)
    mask[0, :, 3:10, 4:30] = 1  # an L: the bounding box holds pixels outside the mask
    mask[0, :, 3:40, 4:11] = 1
    mask[1, :, 5:12, 5:12] = 1  # two squares far apart
    mask[1, :, 30:40, 25:35] = 1
    mask[2, :, 10:35, 8:30] = 1  # a ring
    mask[2, :, 18:27, 15:22] = 0
    mask[3] = 0  # no mask: the first round makes the canvas black
    canvas[0, :, 20:25, 5:9] = 0
    check(canvas, mask)  # canvas values outside the masks are replaced by the first round


def test_few_zero_pixels_at_the_start_leave_the_canvas_as_it_is():
    rng = np.random.default_rng(2)
    canvas = torch.from_numpy(rng.integers(0, 256, size=(2, 3, 16, 16)).astype(np.float64))
    mask = torch.zeros(2, 1, 16, 16, dtype=torch.float64)
    mask[:, :, 2:12, 2:12] = 1
    canvas[0] *= mask[0]  # 156 zero pixels: no round at all
    canvas[1, :, :9] = 0  # 144 + 4 * 7 > 200 zero pixels (outside values do not count)
    canvas[1, :, 9:] *= mask[1, :, 9:]
    got = inpaint(canvas, mask)
    assert torch.equal(got[0], canvas[0])
    check(canvas, mask)


def test_float32_canvases_follow_the_same_rounds():
    rng = np.random.default_rng(3)
    canvas, mask = pasted(rng, (48, 40), views=3, black_kinds=["none", "scattered"])
    expected = reference_inpaint(canvas.float(), mask.float())
    torch.testing.assert_close(inpaint(canvas.float(), mask.float()), expected, rtol=0, atol=1e-3)


def test_pasted_canvases_are_the_canvases_with_their_masks():
    rng = np.random.default_rng(4)
    image = torch.from_numpy(random_image(rng, 13, 17, "edges"))
    origins = [(0, 0), (3, 20), (33, 2), (20, 10)]
    canvas = torch.zeros(4, 3, 35, 50, dtype=torch.float64)
    mask = torch.zeros(4, 1, 35, 50, dtype=torch.float64)
    for v, (x, y) in enumerate(origins):
        canvas[v, :, y : y + 13, x : x + 17] = image
        mask[v, :, y : y + 13, x : x + 17] = 1
    got = inpaint_pasted(image, origins, 35, 50, torch.float64)
    torch.testing.assert_close(got, reference_inpaint(canvas, mask), rtol=0, atol=ATOL)


@pytest.mark.parametrize("path", ["diagonal", "grid", "horizontal"])
def test_protocol_views_equal_the_whole_canvas_rounds(path):
    prep = Preprocessing(input_size=64, interpolation="bicubic", mean=(0.5,) * 3, std=(0.25,) * 3)
    options = ProtocolOptions(sizes=(40, 23), steps=4, path=path)
    rng = np.random.default_rng(len(path))
    for protocol in build_protocols(["inpaint"], prep, options):
        s = protocol.size
        pixels = torch.from_numpy(random_image(rng, s, s, "edges")).to(torch.uint8)
        source = prep.normalize(pixels)
        n = len(protocol.view_params())
        for indices in (range(n), range(1, n - 1)):
            got = protocol.make_views(source, indices)
            expected = reference_make_views(protocol, source, indices)
            assert got.dtype == torch.float32 and got.shape == expected.shape
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_more_views_than_one_chunk_and_other_channel_counts():
    rng = np.random.default_rng(6)
    canvas, mask = pasted(rng, (33, 41), views=CHUNK + 5)
    check(canvas, mask)
    for channels in (1, 4):
        grey = torch.from_numpy(rng.integers(1, 256, size=(3, channels, 30, 30)).astype(float))
        grey[:, :, 10:] = 0
        grey[:, :, :, :4] = 0
        binary = torch.zeros(3, 1, 30, 30, dtype=torch.float64)
        binary[:, :, :10, 4:] = 1
        grey[1, :, 2:5, 8:12] = 0  # black pixels inside one view's image
        check(grey, binary)


@pytest.mark.parametrize("hw", [(1, 3), (3, 1), (8, 2), (2, 8), (20, 4), (5, 2), (1, 12), (12, 1)])
def test_narrow_images_whose_bands_overlap_each_others_inputs(hw):
    # the left band's inputs reach past the right band's outputs, and so on
    h, w = hw
    canvas = torch.zeros(2, 3, 40, 40, dtype=torch.float64)
    mask = torch.zeros(2, 1, 40, 40, dtype=torch.float64)
    values = torch.arange(1, 3 * h * w + 1, dtype=torch.float64).view(3, h, w)
    for v, (y, x) in enumerate([(15, 15), (16, 14)]):
        canvas[v, :, y : y + h, x : x + w] = values
        mask[v, :, y : y + h, x : x + w] = 1
    check(canvas, mask)


def test_a_mask_that_is_not_0_or_1_is_refused():
    canvas = torch.ones(1, 3, 20, 20, dtype=torch.float64)
    mask = torch.full((1, 1, 20, 20), 0.5, dtype=torch.float64)
    with pytest.raises(ValueError, match="only 0 and 1"):
        inpaint(canvas, mask)


@pytest.mark.parametrize(
    ("side", "size", "steps", "black"),
    [(64, 23, 6, "edges"), (64, 40, 4, "scattered"), (48, 40, 8, "block"), (80, 20, 12, "none")],
)
def test_windows_computed_once_for_every_view_give_each_views_bits(side, size, steps, black):
    # The views of a path start as one image on the same zeros, so a window whose inputs no
    # canvas edge has reached yet is blurred once for all of them: their bits must be those
    # of the same rounds computed view by view (canvases given as such, where nothing is
    # shared), and the sharing must happen.
    rng = np.random.default_rng(side + size + steps)
    image = torch.from_numpy(random_image(rng, size, size, black))
    x0 = y0 = (side - size - steps) // 2
    origins = [(x0 + k, y0 + k) for k in range(steps)] + [(x0 + steps, y0)]
    canvas = torch.zeros(len(origins), 3, side, side, dtype=torch.float64)
    mask = torch.zeros(len(origins), 1, side, side, dtype=torch.float64)
    for v, (x, y) in enumerate(origins):
        canvas[v, :, y : y + size, x : x + size] = image
        mask[v, :, y : y + size, x : x + size] = 1
    blurred: list[int] = []
    blur = _inpaint._blur_into

    def counted(out, x, rows, cols, scratch):
        blurred.append(len(x))
        return blur(out, x, rows, cols, scratch)

    _inpaint._blur_into = counted
    try:
        shared = inpaint_pasted(image, origins, side, side, torch.float64)
        assert 1 in blurred  # some windows were computed once
        blurred.clear()
        each = inpaint(canvas, mask)
        assert 1 not in blurred  # canvases as such share nothing
    finally:
        _inpaint._blur_into = blur
    assert torch.equal(shared, each)
    torch.testing.assert_close(shared, reference_inpaint(canvas, mask), rtol=0, atol=ATOL)
