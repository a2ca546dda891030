"""BlurPool layer and the blurpool conversion (Zhang, ICML 2019)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import timm
import torch
import torchvision
from torch import nn

from jaggy.errors import ArgumentError
from jaggy.remedies import BlurPool2d, blurpool, circular_padding
from jaggy.remedies._blur import binomial_filter
from jaggy.remedies._grid import GridConv2d
from jaggy.remedies._padding import PAD_MODES

NUMPY_MODES = {"reflect": "reflect", "replicate": "edge", "zero": "constant", "circular": "wrap"}
TIMM_MODES = {
    "reflect": "reflect",
    "replicate": "replicate",
    "zero": "constant",
    "circular": "circular",
}


def sequential_cnn(seed: int = 0, avgpool: bool = True) -> nn.Module:
    """A plain nn.Sequential CNN: strided conv + BN + ReLU, max pool, strided conv + ReLU,
    average pool (or identity), 3x3 conv, global pool, linear head."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2) if avgpool else nn.Identity(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 5),
    )
    with torch.no_grad():  # non-trivial BN statistics
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


def reference_blurpool(x: np.ndarray, filt_size: int, stride: int, mode: str) -> np.ndarray:
    """Slow, obvious BlurPool: pad ((f-1)//2 before, the rest after), then for every kept
    pixel the weighted sum of its f x f window."""
    taps = np.array([1.0])
    for _ in range(filt_size - 1):
        taps = np.convolve(taps, [0.5, 0.5])
    kernel = np.outer(taps, taps)
    before = (filt_size - 1) // 2
    after = filt_size - 1 - before
    padded = np.pad(x, ((0, 0), (0, 0), (before, after), (before, after)), mode=NUMPY_MODES[mode])
    height, width = x.shape[-2:]
    out = np.zeros(x.shape[:2] + (-(-height // stride), -(-width // stride)))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = padded[
                :, :, i * stride : i * stride + filt_size, j * stride : j * stride + filt_size
            ]
            out[:, :, i, j] = (window * kernel).sum(axis=(2, 3))
    return out


def test_binomial_filters_are_normalised_binomial_rows():
    assert binomial_filter(1).tolist() == [1.0]
    assert binomial_filter(3).tolist() == [0.25, 0.5, 0.25]
    assert binomial_filter(4).tolist() == [0.125, 0.375, 0.375, 0.125]
    for size in range(1, 8):
        taps = binomial_filter(size)
        assert taps.sum().item() == pytest.approx(1.0, abs=1e-15)
        assert torch.equal(taps, taps.flip(0))


@pytest.mark.parametrize("filt_size", [3, 5, 7])
@pytest.mark.parametrize("mode", PAD_MODES)
@pytest.mark.parametrize("size", [(16, 16), (17, 12)])
def test_blur_layer_equals_timm_blurpool(filt_size, mode, size):
    # timm's BlurPool2d supports odd filters; its padding for stride 2 is the same as ours.
    torch.manual_seed(filt_size)
    x = torch.randn(2, 5, *size)
    ours = BlurPool2d(filt_size, 2, mode)(x)
    theirs = timm.layers.BlurPool2d(None, filt_size, 2, TIMM_MODES[mode])(x)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("filt_size", range(1, 8))
@pytest.mark.parametrize("mode", PAD_MODES)
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_blur_layer_equals_slow_reference(filt_size, mode, stride):
    rng = np.random.default_rng(filt_size * 10 + stride)
    x = rng.normal(size=(1, 2, 9, 8))
    out = BlurPool2d(filt_size, stride, mode)(torch.from_numpy(x))
    expected = reference_blurpool(x, filt_size, stride, mode)
    assert out.shape == expected.shape == (1, 2, -(-9 // stride), -(-8 // stride))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_blur_on_maps_smaller_than_the_filter(mode):
    # Late feature maps of small inputs: the pad is as large as the map itself.
    x = np.random.default_rng(0).normal(size=(1, 3, 2, 3))
    out = BlurPool2d(7, 2, mode)(torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), reference_blurpool(x, 7, 2, mode), atol=1e-12)


@pytest.mark.parametrize("filt_size", range(1, 8))
@pytest.mark.parametrize("mode", PAD_MODES)
def test_blur_keeps_constant_maps_constant(filt_size, mode):
    x = torch.full((1, 2, 13, 10), 3.0)
    out = BlurPool2d(filt_size, 2, mode)(x)
    inner = out if mode != "zero" else out[..., 2:-2, 2:-2]  # zeros pull the border down
    torch.testing.assert_close(inner, torch.full_like(inner, 3.0))


def test_blur_layer_accepts_non_contiguous_input_and_other_dtypes():
    x = torch.randn(2, 6, 12, 12).to(memory_format=torch.channels_last)
    layer = BlurPool2d(4, 2)
    torch.testing.assert_close(layer(x), layer(x.contiguous()))
    assert layer(x.double()).dtype == torch.float64
    assert list(layer.state_dict()) == []  # the filter is not part of checkpoints


@pytest.mark.parametrize("bad", [0, 8, 2.5, "4", True])
def test_bad_filter_sizes_raise(bad):
    with pytest.raises(ArgumentError, match="1 to 7"):
        BlurPool2d(bad)


def test_bad_padding_raises():
    with pytest.raises(ArgumentError, match="reflect, replicate, zero, circular"):
        blurpool(sequential_cnn(), 4, "mirror")


def _models():
    torch.manual_seed(0)
    return {
        "sequential": sequential_cnn(),
        "resnet18": torchvision.models.resnet18(weights=None).eval(),
        "lite0": timm.create_model("tf_efficientnet_lite0", pretrained=False).eval(),
    }


@pytest.fixture(scope="module")
def models():
    return _models()


@pytest.mark.parametrize("name", ["sequential", "resnet18", "lite0"])
@pytest.mark.parametrize("size", [64, 61])
def test_filter_size_one_reproduces_the_original_model_exactly(models, name, size):
    # Size 1 = plain subsampling: the dense layers (TF 'SAME' ones included, odd sizes too)
    # sample exactly the original strided grid. (An average pool would become a blur.)
    model = sequential_cnn(avgpool=False) if name == "sequential" else models[name]
    x = torch.randn(2, 3, size, size)
    converted = blurpool(copy.deepcopy(model), filt_size=1)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), model(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["sequential", "resnet18", "lite0"])
def test_conversion_keeps_output_shape_weights_and_state_dict_keys(models, name):
    model = models[name]
    converted = blurpool(copy.deepcopy(model), 4, "reflect")
    original, new = model.state_dict(), converted.state_dict()
    assert list(new) == list(original)
    for key in original:
        assert torch.equal(new[key], original[key]), key
    # A checkpoint of the converted model loads into the original architecture.
    fresh = copy.deepcopy(model)
    fresh.load_state_dict(new)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out, reference = converted(x), model(x)
    assert out.shape == reference.shape
    assert not torch.allclose(out, reference)  # the blur really changed the computation
    assert not converted.training
    assert all(not module.training for module in converted.modules())
    blurs = [m for m in converted.modules() if isinstance(m, BlurPool2d)]
    expected = {"sequential": 4, "resnet18": 8, "lite0": 5}[name]
    assert len(blurs) == expected


@pytest.mark.parametrize("filt_size", range(1, 8))
@pytest.mark.parametrize("mode", PAD_MODES)
def test_every_filter_and_padding_converts_a_sequential_cnn(filt_size, mode):
    model = sequential_cnn()
    x = torch.randn(2, 3, 32, 32)
    converted = blurpool(copy.deepcopy(model), filt_size, mode)
    with torch.no_grad():
        out = converted(x)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    assert all(
        b.filt_size == filt_size and b.pad_mode == mode
        for b in converted.modules()
        if isinstance(b, BlurPool2d)
    )


def test_placement_follows_norm_and_activation():
    converted = blurpool(sequential_cnn(), 4)
    # conv(stride 1) -> BN -> ReLU -> blur
    assert isinstance(converted[0], GridConv2d) and converted[0].stride == (1, 1)
    assert converted[0].subsample is None
    assert isinstance(converted[2], nn.Sequential)
    assert isinstance(converted[2][0], nn.ReLU) and isinstance(converted[2][1], BlurPool2d)
    # max pool(stride 1) -> blur; avg pool -> blur
    assert converted[3][0].stride == (1, 1) and isinstance(converted[3][1], BlurPool2d)
    assert isinstance(converted[6], BlurPool2d) and converted[6].stride == (2, 2)


def test_placement_in_timm_and_torchvision_models(models):
    lite = blurpool(copy.deepcopy(models["lite0"]), 4)
    # The stem's blur follows its norm-act layer; blocks use timm's own `aa` slot.
    assert isinstance(lite.bn1.act[1], BlurPool2d)
    assert isinstance(lite.blocks[1][0].aa, BlurPool2d)
    assert lite.blocks[1][0].conv_dw.stride == (1, 1) and lite.blocks[1][0].conv_dw.same
    resnet = blurpool(copy.deepcopy(models["resnet18"]), 4)
    # torchvision's BasicBlock reuses one ReLU: its traced forward shows conv1 -> bn1 -> relu
    # -> conv2, so the blur runs on conv2's input (antialiased-cnns' place); it precedes the
    # 1x1 shortcut conv (Zhang's shortcut: Blur -> Conv1x1 -> BN).
    assert resnet.layer2[0].conv1.subsample is None
    assert len(resnet.layer2[0].conv2._forward_pre_hooks) == 1
    assert resnet.layer2[0].downsample[0].subsample_first is True


def test_converted_model_on_a_constant_image_is_constant_across_shifts():
    # With circular convolutions, a constant image gives spatially constant feature maps at
    # every depth (the blur's taps sum to 1), hence one output for every shift.
    for mode in ("reflect", "replicate", "circular"):
        model = circular_padding(blurpool(sequential_cnn(), 4, mode))
        maps = []
        for layer in model:
            if isinstance(layer, (nn.Conv2d, nn.Sequential, BlurPool2d)):
                layer.register_forward_hook(lambda m, a, out, maps=maps: maps.append(out))
        image = torch.full((1, 3, 32, 32), 0.7)
        with torch.no_grad():
            outputs = [
                model(torch.roll(image, (dy, dx), (2, 3)))
                for dy, dx in [(0, 0), (1, 0), (0, 1), (3, 5)]
            ]
        for fmap in maps:
            assert (fmap - fmap[..., :1, :1]).abs().max() < 1e-5
        for out in outputs[1:]:
            torch.testing.assert_close(out, outputs[0], rtol=0, atol=1e-6)


def test_converted_model_trains():
    model = blurpool(sequential_cnn(), 4).train()
    loss = model(torch.randn(4, 3, 32, 32)).square().mean()
    loss.backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0


def test_converting_twice_keeps_existing_blurs():
    once = blurpool(sequential_cnn(), 4)
    count = sum(isinstance(m, BlurPool2d) for m in once.modules())
    twice = blurpool(once, 4)
    assert sum(isinstance(m, BlurPool2d) for m in twice.modules()) == count


def test_a_strided_root_layer_is_replaced():
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    converted = blurpool(conv, 1)
    assert converted is not conv and isinstance(converted, GridConv2d)
    x = torch.randn(1, 3, 9, 9)
    torch.testing.assert_close(converted(x), conv(x))


def test_timm_conv_norm_act_blocks_use_their_aa_slot():
    model = nn.Sequential(
        timm.layers.ConvNormAct(3, 8, 3, stride=2),
        timm.layers.ConvNormAct(8, 8, 3, stride=2, padding="same"),  # TF 'SAME'
    ).eval()
    x = torch.randn(1, 3, 17, 17)
    with torch.no_grad():
        reference = model(x)
        exact = blurpool(copy.deepcopy(model), 1)(x)
    torch.testing.assert_close(exact, reference, rtol=0, atol=1e-6)
    converted = blurpool(model, 4)
    assert all(isinstance(block.aa, BlurPool2d) for block in converted)
    assert converted(x).shape == reference.shape


class _DoubledConv(nn.Conv2d):
    """A convolution class with its own forward, which the surgery must not replace."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = _DoubledConv(3, 4, 3, stride=2, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


def test_unknown_convolution_classes_run_at_stride_one_in_place():
    torch.manual_seed(0)
    model = _Net().eval()
    x = torch.randn(2, 3, 15, 16)
    with torch.no_grad():
        reference = model(x)
        converted = blurpool(copy.deepcopy(model), 1)
        assert type(converted.conv) is _DoubledConv and converted.conv.stride == (1, 1)
        torch.testing.assert_close(converted(x), reference, rtol=0, atol=1e-6)
        blurred = blurpool(copy.deepcopy(model), 4)
        assert isinstance(blurred.conv.subsample, BlurPool2d)
        assert list(blurred.state_dict()) == list(model.state_dict())
        assert not torch.allclose(blurred(x), reference)


def test_unsupported_strided_layers_are_reported():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LPPool2d(2, 2, stride=2))
    with pytest.warns(UserWarning, match=r"left unchanged: 1 \(LPPool2d"):
        blurpool(model)
