"""Remedies placed as the peers place them: torchvision blocks converted by jaggy equal
antialiased-cnns' blocks (PyPI `antialiased-cnns`) with the same weights, and APS equals a
transcription of truly_shift_invariant_cnns' BasicBlock.

antialiased-cnns moves each block's stride behind its norm and ReLU: Conv(stride 1) -> BN ->
ReLU -> BlurPool(stride 2) -> next conv, and BlurPool -> Conv1x1 -> BN on the shortcut.
"""

from __future__ import annotations

import copy
import warnings

import antialiased_cnns  # a test dependency (pyproject's `test` extra)
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from jaggy.remedies import (
    BlurPool2d,
    PolyphaseDownsample2d,
    RemedyWarning,
    _surgery,
    aps,
    blurpool,
    circular_padding,
)


def random_norms(module: nn.Module, seed: int) -> None:
    """Batch-norm statistics and affine parameters far from the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in module.modules():
            if isinstance(norm, nn.BatchNorm2d):
                for tensor, (lo, hi) in [
                    (norm.running_mean, (-0.5, 0.5)),
                    (norm.running_var, (0.3, 2.0)),
                    (norm.weight, (0.5, 1.5)),
                    (norm.bias, (-0.5, 0.5)),
                ]:
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (hi - lo) + lo)


def zhang_block(kind: str, inplanes: int, planes: int, seed: int):
    """antialiased-cnns' block (stride 2, filter 4) and a torchvision block with its weights."""
    torch.manual_seed(seed)
    ours, theirs = (
        (BasicBlock, antialiased_cnns.resnet.BasicBlock)
        if kind == "basic"
        else (Bottleneck, antialiased_cnns.resnet.Bottleneck)
    )
    width = planes * ours.expansion
    peer = theirs(
        inplanes,
        planes,
        stride=2,
        downsample=nn.Sequential(
            antialiased_cnns.BlurPool(inplanes, filt_size=4, stride=2),
            nn.Conv2d(inplanes, width, 1, bias=False),
            nn.BatchNorm2d(width),
        ),
        filter_size=4,
    )
    random_norms(peer, seed)
    block = ours(
        inplanes,
        planes,
        stride=2,
        downsample=nn.Sequential(
            nn.Conv2d(inplanes, width, 1, stride=2, bias=False), nn.BatchNorm2d(width)
        ),
    )
    strided = "conv2" if kind == "basic" else "conv3"  # the conv that follows the blur
    renamed = {f"{strided}.1.": f"{strided}.", "downsample.1.": "downsample.0.",
               "downsample.2.": "downsample.1."}  # fmt: skip
    state = {}
    for key, value in peer.state_dict().items():
        if key.endswith(".filt"):
            continue
        for old, new in renamed.items():
            key = key.replace(old, new) if key.startswith(old) else key
        state[key] = value
    block.load_state_dict(state)
    return block.eval(), peer.eval()


@pytest.mark.parametrize("kind", ["basic", "bottleneck"])
@pytest.mark.parametrize("seed", [0, 1])
def test_blurpooled_torchvision_blocks_equal_antialiased_cnns_blocks(kind, seed, monkeypatch):
    block, peer = zhang_block(kind, 16, 8 if kind == "bottleneck" else 16, seed)
    x = torch.randn(2, 16, 20, 20)
    with torch.no_grad():
        expected = peer(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RemedyWarning)  # every placement was found
            converted = blurpool(copy.deepcopy(block), 4, "reflect")
        got = converted(x)
        # the placement matters: the blur right after the strided conv (before BN and
        # ReLU, where an untraceable forward leaves it) is another network
        monkeypatch.setattr(_surgery._TracedBlock, "trace", classmethod(lambda cls, b: "off"))
        with pytest.warns(RemedyWarning):
            after_conv = blurpool(copy.deepcopy(block), 4, "reflect")(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    relative = (after_conv - expected).norm() / expected.norm()
    assert relative > 1e-3
    # and the keys are still torchvision's
    assert list(converted.state_dict()) == list(block.state_dict())


def test_torchvision_resnet_stem_and_blocks_follow_the_activation():
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RemedyWarning)
        converted = blurpool(model, 4)
    # conv1(stride 1) -> bn1 -> relu -> blur -> maxpool(stride 1) -> blur
    assert converted.conv1.stride == (1, 1) and converted.conv1.subsample is None
    pre = [type(h.subsampler) for h in converted.maxpool._forward_pre_hooks.values()]
    assert pre == [BlurPool2d]
    assert isinstance(converted.maxpool[1], BlurPool2d)
    block = converted.layer2[0]
    assert block.conv1.subsample is None
    assert [type(h.subsampler) for h in block.conv2._forward_pre_hooks.values()] == [BlurPool2d]
    assert block.downsample[0].subsample_first  # Blur -> Conv1x1 -> BN, as Zhang's shortcut
    assert sum(isinstance(m, BlurPool2d) for m in converted.modules()) == 8


class Untraceable(nn.Module):
    """A block whose forward branches on data: torch.fx cannot follow it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.head = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        out = self.act(self.norm(self.conv(x)))
        if out.mean() > 10:  # data-dependent
            out = out * 2
        return self.head(out)


def test_untraceable_blocks_keep_the_blur_after_the_conv_and_say_so():
    with pytest.warns(RemedyWarning, match="right after the strided convolution.*conv"):
        converted = blurpool(Untraceable().eval(), 4)
    assert isinstance(converted.conv.subsample, BlurPool2d)
    out = converted(torch.randn(1, 3, 16, 16))
    assert out.shape == (1, 4, 8, 8)


def test_blocks_survive_deepcopy_pickling_and_a_second_remedy():
    import io

    block, _ = zhang_block("basic", 8, 8, 3)
    converted = circular_padding(aps(blurpool(block, 3)))
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        out = converted(x)
        torch.testing.assert_close(copy.deepcopy(converted)(x), out, rtol=0, atol=0)
        buffer = io.BytesIO()
        torch.save(converted, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        torch.testing.assert_close(loaded(x), out, rtol=0, atol=0)
    hooks = list(converted.conv2._forward_pre_hooks.values())
    assert len(hooks) == 1 and isinstance(hooks[0].subsampler, nn.Sequential)
    assert isinstance(hooks[0].subsampler[1], PolyphaseDownsample2d)


# --- APS: a transcription of truly_shift_invariant_cnns' BasicBlock -----------------------


def aps_polyphase_order(n: int) -> torch.Tensor:
    """permute_polyphase: flat indices of the components (even row, even col), (odd row,
    even col), (even row, odd col), (odd row, odd col) of an n x n map, in that order."""
    even, odd = 2 * torch.arange(n // 2)[None, :], 1 + 2 * torch.arange(n // 2)[None, :]
    even_rows, odd_rows = (
        2 * n * torch.arange(n // 2)[:, None],
        n + 2 * n * torch.arange(n // 2)[:, None],
    )
    return torch.cat(
        [
            (even + even_rows).view(-1),
            (even + odd_rows).view(-1),
            (odd + even_rows).view(-1),
            (odd + odd_rows).view(-1),
        ]
    )


def aps_downsample(x: torch.Tensor, indices: torch.Tensor | None = None):
    """aps_downsample_v2 (stride 2, l2 criterion): the component with the largest norm, or
    the one given."""
    b, c, n, _ = x.shape
    components = (
        torch.index_select(x.reshape(b, c, -1), 2, aps_polyphase_order(n))
        .view(b, c, 4, n * n // 4)
        .permute(0, 2, 1, 3)
    )
    if indices is None:
        indices = torch.norm(components, dim=(2, 3), p=2).argmax(dim=1)
    return components[torch.arange(b), indices].view(b, c, n // 2, n // 2), indices


def aps_basic_block(block: BasicBlock, x: torch.Tensor) -> torch.Tensor:
    """APS's BasicBlock.forward with circularly padded 3x3 convs at stride 1, using the
    weights of a torchvision block."""

    def conv3x3(conv, y):
        return F.conv2d(F.pad(y, (1, 1, 1, 1), mode="circular"), conv.weight)

    out = block.relu(block.bn1(conv3x3(block.conv1, x)))
    out, indices = aps_downsample(out)
    out = block.bn2(conv3x3(block.conv2, out))
    shortcut, _ = aps_downsample(x, indices)  # the main path's choice
    shortcut = block.downsample[1](F.conv2d(shortcut, block.downsample[0].weight))
    return block.relu(out + shortcut)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aps_block_equals_the_aps_papers_block(seed):
    block, _ = zhang_block("basic", 8, 16, seed)
    x = torch.randn(3, 8, 16, 16)
    with torch.no_grad():
        expected = aps_basic_block(block, x)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RemedyWarning)
            converted = circular_padding(aps(copy.deepcopy(block)))
        got = converted(x)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
        # exactly invariant to circular shifts by the block's stride
        shifted = converted(torch.roll(x, (2, 4), dims=(2, 3)))
        torch.testing.assert_close(shifted, torch.roll(got, (1, 2), dims=(2, 3)), rtol=0, atol=1e-5)


def test_polyphase_ties_follow_apss_order():
    # components (1, 0) and (0, 1) have equal norms, larger than the others: APS keeps (1, 0)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1::2, 0::2] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    x[0, 0, 0::2, 1::2] = torch.tensor([[4.0, 3.0], [2.0, 1.0]])
    expected, indices = aps_downsample(x)
    assert int(indices) == 1
    torch.testing.assert_close(PolyphaseDownsample2d(2)(x), expected, rtol=0, atol=0)
