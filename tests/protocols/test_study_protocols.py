"""The study's own protocols and inpainting against plain transcriptions of the study's code.

The references below re-state, loop for loop, what Azulay & Weiss's CheckTranslationInvariance.py
(`JaggedNess`, with torchvision's ImageFolder + RandomResizedCrop(., scale=(1, 1)) + ToTensor +
Normalize) and InpaintingFunction.py (`inpaint`, `inpainting`, with scipy's convolve2d) do.
jaggy's views, P(top-1 change) and MAC must equal them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.signal import convolve2d
from torchvision import transforms

from jaggy.data._decode import decode_sources
from jaggy.engine import AuditConfig, run_audit
from jaggy.models import Preprocessing
from jaggy.protocols import ProtocolOptions, build_protocols
from jaggy.protocols.embed import inpaint

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)  # tinynets' preprocessing
PREP = Preprocessing(input_size=224, interpolation="bilinear", mean=MEAN, std=STD)


def smooth_image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, 3))
    for _ in range(5):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(8, max(width, height) / 3)
        image += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None] * rng.uniform(
            0, 1, 3
        )
    return Image.fromarray((np.clip(image / image.max(), 0, 1) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Aspect ratios on each side of the [3/4, 4/3] window, and a JPEG large enough that a
    draft decode would shrink it."""
    folder = tmp_path_factory.mktemp("photos")
    smooth_image(300, 140, 0).save(folder / "wide.png")
    smooth_image(120, 330, 1).save(folder / "tall.png")
    smooth_image(250, 200, 2).save(folder / "within.png")
    smooth_image(1100, 1000, 3).save(folder / "large.jpg", quality=92)
    return folder


# --- transcription of the study's code ----------------------------------------------------


def study_input(path, side: int) -> torch.Tensor:
    """ImageFolder's loader, then RandomResizedCrop(side, scale=(1, 1)), ToTensor, Normalize."""
    with open(path, "rb") as f:
        image = Image.open(f).convert("RGB")
    crop = transforms.RandomResizedCrop(side, scale=(1, 1))
    torch.manual_seed(0)
    params = crop.get_params(image, crop.scale, crop.ratio)
    w, h = image.size
    # this seed's random search misses, so the transform takes its central fallback
    ratio = w / h
    fw, fh = (w, round(w / 0.75)) if ratio < 0.75 else (w, h)
    if ratio > 4 / 3:
        fw, fh = round(h * 4 / 3), h
    assert params == ((h - fh) // 2, (w - fw) // 2, fh, fw), params
    torch.manual_seed(0)
    pipeline = transforms.Compose([crop, transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    return pipeline(image)[None]


def study_crop_pairs(input: torch.Tensor, r: int = 224):
    """JaggedNess' crop branch: the (inputs1, inputs2) pairs for c = centre - 4 .. centre + 3."""
    center = int((input.shape[3] - r - 1) / 2)
    return [
        (input[:, :, c : c + r, c : c + r], input[:, :, c + 1 : c + r + 1, c + 1 : c + r + 1])
        for c in range(center - 4, center + 4)
    ]


def study_black_pairs(input: torch.Tensor, r: int = 224):
    """JaggedNess' black branch: the image pasted on zeros at c and at c + 1."""
    s = input.shape[3]
    center = int((r - s - 1) / 2)
    pairs = []
    for c in range(center - 4, center + 4):
        inputs1, inputs2 = torch.zeros(1, 3, r, r), torch.zeros(1, 3, r, r)
        inputs1[:, :, c : c + s, c : c + s] = input
        inputs2[:, :, c + 1 : c + s + 1, c + 1 : c + s + 1] = input
        pairs.append((inputs1, inputs2))
    return pairs


def study_scores(model, pairs):
    """P(top-1 change) and MAC as JaggedNess accumulates them (Jagged / Counter, MAC / Counter)."""
    soft = torch.nn.Softmax(dim=1)
    jagged = mac = counter = 0.0
    with torch.no_grad():
        for inputs1, inputs2 in pairs:
            outputs1, outputs2 = soft(model(inputs1)), soft(model(inputs2))
            t = int(torch.argmax(outputs1, 1))
            mac += abs(float(outputs1[0, t]) - float(outputs2[0, t]))
            jagged += float(torch.sum(torch.argmax(outputs1, 1) != torch.argmax(outputs2, 1)))
            counter += inputs1.shape[0]
    return jagged / counter, mac / counter


# --- tests --------------------------------------------------------------------------------


def test_study_protocols_default_geometry():
    protocols = build_protocols(["study_crop", "study_black"], PREP, ProtocolOptions())
    assert [p.key for p in protocols] == [
        "study_crop",
        "study_black@172",
        "study_black@140",
        "study_black@117",
    ]
    assert protocols[0].source().side == 234
    for p in protocols:
        assert p.n_views == 9  # 8 pairs c -> c + 1
        assert p.source().full_decode


@pytest.mark.parametrize("name", ["wide.png", "tall.png", "within.png", "large.jpg"])
def test_study_views_are_the_studys_inputs(photos, name):
    path = photos / name
    protocols = build_protocols(["study_crop", "study_black"], PREP, ProtocolOptions())
    sources, _ = decode_sources(str(path), [p.source() for p in protocols], "bicubic", 0.875)
    for protocol in protocols:
        source = PREP.normalize(sources[protocol.source().key])
        views = protocol.make_views(source, range(9))
        side = 234 if protocol.name == "study_crop" else protocol.size
        reference = study_input(path, side)
        pairs = (study_crop_pairs if protocol.name == "study_crop" else study_black_pairs)(
            reference
        )
        for c, (first, second) in enumerate(pairs):
            assert torch.equal(views[c], first[0]), (protocol.key, c)
            assert torch.equal(views[c + 1], second[0]), (protocol.key, c)


def test_study_metrics_equal_the_studys_loop(photos, tmp_path):
    from tinynets import tiny_jumpy224

    config = AuditConfig(
        model="py:tinynets:tiny_jumpy224",
        data=str(photos),
        protocols=["study_crop", "study_black"],
        batch_size=7,
        workers=0,
        threads=1,
        out=str(tmp_path / "run"),
    )
    result = run_audit(config, progress=False)
    summary = json.loads((result.out / "summary.json").read_text())["protocols"]
    model = tiny_jumpy224().eval()
    paths = sorted(photos.iterdir())
    for key, entry in summary.items():
        name, _, size = key.partition("@")
        side = 234 if name == "study_crop" else int(size)
        make_pairs = study_crop_pairs if name == "study_crop" else study_black_pairs
        scores = [study_scores(model, make_pairs(study_input(p, side))) for p in paths]
        # 8 pairs per image, so the study's pooled means are the means over images
        assert entry["n_pairs"] == 8 * len(paths)
        assert entry["p_top1_change"]["value"] == pytest.approx(
            np.mean([s[0] for s in scores]), abs=1e-12
        ), key
        assert entry["mac"]["value"] == pytest.approx(np.mean([s[1] for s in scores]), abs=1e-5)


# --- the study's inpainting -----------------------------------------------------------------


def study_inpaint_round(im, mask, w_size=10):
    """InpaintingFunction.inpaint: a normalised convolution with [0.5, 0.5] convolved w_size
    times with itself, rows then columns, scipy 'same' mode."""
    out = np.zeros_like(im)
    kernel = np.array([[0.5, 0.5]])
    k0 = kernel
    for _ in range(w_size):
        kernel = np.array(convolve2d(kernel, k0))
    for chan in range(3):
        channel = im[:, :, chan]
        blurred = convolve2d(convolve2d(channel * mask, kernel, "same"), kernel.T, "same")
        weight = convolve2d(convolve2d(mask, kernel, "same"), kernel.T, "same")
        interpolated = blurred / (weight + (weight == 0))
        out[:, :, chan] = mask * channel + (1 - mask) * interpolated
    return out


def study_inpainting(im, x, y, h, w):
    """InpaintingFunction.inpainting: rounds until at most 200 pixels sum to zero, or 80."""
    mask = np.zeros_like(im)
    mask[y : y + h, x : x + w, 0:3] = 1
    mask = mask[:, :, 0]
    gray = im[:, :, 0] + im[:, :, 1] + im[:, :, 2]
    rounds = 0
    while np.sum(gray == 0) > 200 and rounds < 80:
        rounds += 1
        im = study_inpaint_round(im, mask, 10)
        gray = im[:, :, 0] + im[:, :, 1] + im[:, :, 2]
        mask = np.ones_like(gray)
        mask[gray == 0] = 0
    return im


def test_study_filter_is_the_12_tap_binomial():
    from math import comb

    from jaggy.protocols.embed import INPAINT_TAPS

    kernel = np.array([[0.5, 0.5]])
    k0 = kernel
    for _ in range(10):
        kernel = convolve2d(kernel, k0)
    assert np.array_equal(kernel[0], INPAINT_TAPS.numpy())
    assert np.array_equal(INPAINT_TAPS.numpy() * 2048, [comb(11, k) for k in range(12)])


@pytest.mark.parametrize(
    ("canvas_side", "x", "y", "h", "w", "black_patch"),
    [
        (96, 30, 22, 40, 36, False),  # stops once <= 200 zero pixels are left
        (64, 20, 20, 24, 24, True),  # black pixels inside the image are filled from round 2
        (48, 10, 12, 9, 7, "all"),  # an all-black image never fills: stops after 80 rounds
    ],
)
def test_inpainting_equals_the_studys(canvas_side, x, y, h, w, black_patch):
    rng = np.random.default_rng(canvas_side)
    image = rng.integers(1, 256, size=(h, w, 3)).astype(np.float64)
    if black_patch == "all":
        image[:] = 0
    elif black_patch:
        image[3:7, 4:9] = 0
    canvas = np.zeros((canvas_side, canvas_side, 3))
    canvas[y : y + h, x : x + w] = image
    expected = study_inpainting(canvas.copy(), x, y, h, w)
    mask = np.zeros((canvas_side, canvas_side))
    mask[y : y + h, x : x + w] = 1
    got = inpaint(
        torch.from_numpy(canvas).permute(2, 0, 1)[None],
        torch.from_numpy(mask)[None, None],
    )[0].permute(1, 2, 0)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-9)
    if black_patch != "all":
        assert np.sum(expected.sum(axis=2) == 0) <= 200


def test_inpaint_protocol_views_are_the_studys_inpainting():
    prep = Preprocessing(input_size=64, interpolation="bilinear", mean=MEAN, std=STD)
    protocol = build_protocols(["inpaint"], prep, ProtocolOptions(sizes=(30,), steps=3))[0]
    pixels = torch.from_numpy(np.array(smooth_image(30, 30, 5))).permute(2, 0, 1).contiguous()
    views = protocol.make_views(prep.normalize(pixels), range(3))
    x0 = (64 - 30 - 2) // 2
    for k in range(3):
        canvas = np.zeros((64, 64, 3))
        canvas[x0 + k : x0 + k + 30, x0 + k : x0 + k + 30] = pixels.permute(1, 2, 0).numpy()
        filled = study_inpainting(canvas, x0 + k, x0 + k, 30, 30)
        expected = prep.normalize(torch.from_numpy(filled).permute(2, 0, 1).float() / 255.0)
        assert torch.allclose(views[k], expected, atol=1e-6), k
