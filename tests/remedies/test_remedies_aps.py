"""Adaptive polyphase sampling and circular padding (Chaman & Dokmanić, CVPR 2021): exact
invariance to circular shifts."""

from __future__ import annotations

import copy
import io
import itertools

import pytest
import timm
import torch
import torchvision
from torch import nn

from jaggy.remedies import BlurPool2d, PolyphaseDownsample2d, aps, blurpool, circular_padding
from jaggy.remedies._grid import GridConv2d


def sequential_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 5),
    ).eval()


def random_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "resnet18":
        return torchvision.models.resnet18(weights=None).eval()
    if name == "lite0":
        return timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    return sequential_cnn()


def worst_shift_change(model: nn.Module, x: torch.Tensor, shifts: int = 20, seed: int = 0):
    """Largest logit change and number of top-1 changes over random circular shifts."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        reference = model(x)
        worst, flips = 0.0, 0
        for _ in range(shifts):
            dy, dx = torch.randint(0, x.shape[-1], (2,), generator=generator).tolist()
            out = model(torch.roll(x, (dy, dx), dims=(2, 3)))
            worst = max(worst, (out - reference).abs().max().item())
            flips += int((out.argmax(1) != reference.argmax(1)).sum())
    return worst, flips, reference


def test_polyphase_layer_keeps_the_component_with_the_largest_norm():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 8, 6)
    out = PolyphaseDownsample2d(2)(x)
    for image in range(3):
        components = {
            (a, b): x[image, :, a::2, b::2] for a, b in itertools.product(range(2), repeat=2)
        }
        best = max(components, key=lambda ab: components[ab].norm().item())
        assert torch.equal(out[image], components[best])


@pytest.mark.parametrize("stride", [2, 3])
def test_polyphase_layer_is_equivariant_to_circular_shifts(stride):
    # The output of a rolled map is the original output rolled by whole coarse pixels.
    torch.manual_seed(1)
    layer = PolyphaseDownsample2d(stride)
    x = torch.randn(2, 3, 6 * stride, 4 * stride)
    out = layer(x)
    for dy, dx in [(1, 0), (0, 1), (stride + 1, 2), (5, 7)]:
        shifted = layer(torch.roll(x, (dy, dx), (2, 3)))
        for image in range(2):
            assert any(
                torch.equal(shifted[image], torch.roll(out[image], (cy, cx), (1, 2)))
                for cy in range(out.shape[2])
                for cx in range(out.shape[3])
            ), (dy, dx)


def test_polyphase_layer_extends_odd_maps():
    out = PolyphaseDownsample2d(2)(torch.randn(2, 3, 7, 5))
    assert out.shape == (2, 3, 4, 3)


@pytest.mark.parametrize("name", ["sequential", "resnet18", "lite0"])
def test_aps_with_circular_padding_is_exactly_invariant_to_circular_shifts(name):
    model = circular_padding(aps(random_model(name)))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    worst, flips, reference = worst_shift_change(model, x, shifts=20)
    assert flips == 0
    assert worst < 1e-4, worst
    assert reference.abs().max() > 1e-2  # not trivially constant logits


def test_without_one_choice_per_resolution_residual_networks_are_not_invariant():
    # A residual block's main path and strided shortcut must keep the same component;
    # letting each APS layer choose alone breaks invariance (this is what the test above
    # would catch).
    model = circular_padding(aps(random_model("resnet18")))
    for layer in model.modules():
        if isinstance(layer, PolyphaseDownsample2d):
            layer.context = None
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    worst, _, _ = worst_shift_change(model, x, shifts=20)
    assert worst > 1e-2


@pytest.mark.parametrize("remedy", ["none", "aps", "circular"])
def test_either_remedy_alone_is_not_invariant(remedy):
    model = random_model("lite0")
    if remedy == "aps":
        model = aps(model)
    elif remedy == "circular":
        model = circular_padding(model)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    worst, _, _ = worst_shift_change(model, x, shifts=4)
    assert worst > 1e-3


def test_aps_on_a_blurpooled_model_and_with_a_blur_stays_invariant():
    # blurpool then aps: every BlurPool becomes blur(stride 1) + APS (APS with a low-pass
    # filter); aps:3 adds a blur itself.
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    for model in (
        circular_padding(aps(blurpool(random_model("resnet18"), 4))),
        circular_padding(aps(random_model("resnet18"), filt_size=3)),
    ):
        blurs = [m for m in model.modules() if isinstance(m, BlurPool2d)]
        assert blurs and all(b.stride == (1, 1) and b.pad_mode == "circular" for b in blurs)
        worst, flips, _ = worst_shift_change(model, x, shifts=6)
        assert flips == 0 and worst < 1e-4


def test_aps_keeps_state_dict_shapes_mode_and_installs_one_context():
    model = random_model("resnet18")
    keys = list(model.state_dict())
    converted = aps(model)
    converted = aps(converted)  # nothing strided is left: no second set of hooks
    assert list(converted.state_dict()) == keys
    assert len(converted._forward_pre_hooks) == 1 and len(converted._forward_hooks) == 1
    layers = [m for m in converted.modules() if isinstance(m, PolyphaseDownsample2d)]
    assert len(layers) == 8 and len({id(layer.context) for layer in layers}) == 1
    assert all(not m.training for m in converted.modules())
    with torch.no_grad():
        assert converted(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_converted_models_survive_deepcopy_and_pickling():
    model = circular_padding(aps(random_model("sequential")))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        copied = copy.deepcopy(model)
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        for other in (copied, loaded):
            torch.testing.assert_close(other(x), expected)
            contexts = {
                id(m.context) for m in other.modules() if isinstance(m, PolyphaseDownsample2d)
            }
            assert len(contexts) == 1


def test_circular_padding_converts_tf_same_and_keeps_shapes():
    model = random_model("lite0")
    x = torch.randn(1, 3, 61, 61)
    with torch.no_grad():
        before = model(x)
        converted = circular_padding(model)
        after = converted(x)
    assert after.shape == before.shape
    convs = [m for m in converted.modules() if isinstance(m, GridConv2d)]
    assert convs and all(c.pad_mode == "circular" for c in convs)
    assert converted.conv_stem.same and converted.conv_stem.stride == (2, 2)


def test_aps_gradients_flow():
    model = aps(sequential_cnn()).train()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert model[0].weight.grad.abs().sum() > 0
