"""Stride maps: analytic tiny nets, timm's tf-'same' and BatchNormAct layers, known models."""

from __future__ import annotations

import timm
import torch
from timm.layers import BatchNormAct2d, create_conv2d
from torch import nn

import jaggy
from jaggy.layers import stride_map
from jaggy.layers._stride import module_kind


class SmallNet(nn.Module):
    """conv/2 -> BN -> ReLU (in place) -> maxpool/2 -> conv -> Identity -> Dropout -> conv/2
    -> global pool -> linear: total stride 8."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.skip = nn.Identity()
        self.drop = nn.Dropout(0.5)
        self.conv3 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = self.pool(self.relu(self.bn(self.conv1(x))))
        x = self.drop(self.skip(self.conv2(x)))
        return self.fc(self.gap(self.conv3(x)).flatten(1))


def test_small_net_strides_kinds_and_distinct_maps():
    smap = stride_map(SmallNet().eval(), 32)
    names = [layer.name for layer in smap.layers]
    assert names == ["conv1", "bn", "relu", "pool", "conv2", "conv3"]  # no Identity/Dropout/gap
    by = {layer.name: layer for layer in smap.layers}
    assert by["conv1"].stride == (2, 2) and by["conv1"].cumulative_stride == (2, 2)
    assert by["relu"].cumulative_stride == (2, 2) and by["relu"].kind == "act"
    assert by["pool"].kind == "pool" and by["pool"].cumulative_stride == (4, 4)
    assert by["conv3"].cumulative_stride == (8, 8) and by["conv3"].out_shape == (6, 4, 4)
    assert smap.total_stride == (8, 8)
    assert [layer.name for layer in smap.subsampling] == ["conv1", "pool", "conv3"]
    assert by["pool"].nonlinearity == "relu"  # the in-place ReLU's output feeds the pool
    assert by["conv1"].nonlinearity is None and by["conv3"].nonlinearity is None
    assert [layer.index for layer in smap.layers] == list(range(6))
    data = smap.to_dict()
    assert data["total_stride"] == 8 and data["subsampling"] == ["conv1", "pool", "conv3"]


class SharedReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.b(self.relu(self.a(x)))).mean((2, 3))


def test_a_module_called_twice_gives_two_layers():
    names = [layer.name for layer in stride_map(SharedReLU(), 16).layers]
    assert names == ["a", "relu#1", "b", "relu#2"]


def test_timm_same_padding_depthwise_and_batchnorm_act():
    net = nn.Sequential(
        create_conv2d(3, 8, 3, stride=2, padding="same"),
        BatchNormAct2d(8, act_layer=nn.ReLU6),
        create_conv2d(8, 8, 3, stride=2, padding="same", depthwise=True),
        BatchNormAct2d(8, act_layer=nn.ReLU6),
    ).eval()
    assert type(net[0]).__name__ == "Conv2dSame"
    smap = stride_map(net, 30)  # odd sizes: tf 'same' rounds up, 30 -> 15 -> 8
    layers = smap.layers
    assert [(layer.name, layer.kind) for layer in layers] == [
        ("0", "conv"),
        ("1", "norm_act"),
        ("2", "conv_dw"),
        ("3", "norm_act"),
    ]
    assert [layer.out_shape for layer in layers] == [(8, 15, 15), (8, 15, 15), (8, 8, 8), (8, 8, 8)]
    assert layers[2].cumulative_stride == (4, 4)
    assert layers[2].nonlinearity == "1.act"
    assert module_kind(net[1]) == "norm_act"


def test_efficientnet_lite0_total_stride_32():
    model = jaggy.load_model("jaggy:efficientnet_lite0", random_weights=True).module
    smap = stride_map(model, 224)
    assert smap.total_stride == (32, 32)
    sub = smap.subsampling
    assert [layer.name for layer in sub] == [
        "conv_stem",
        "blocks.1.0.conv_dw",
        "blocks.2.0.conv_dw",
        "blocks.3.0.conv_dw",
        "blocks.5.0.conv_dw",
    ]
    assert all(layer.kind == "conv_dw" for layer in sub[1:])
    assert all(layer.nonlinearity and layer.nonlinearity.endswith("bn1.act") for layer in sub[1:])
    assert smap.layers[-1].name == "bn2" and smap.layers[-1].out_shape == (1280, 7, 7)


def test_torchvision_resnet18_total_stride_32():
    model = jaggy.load_model("tv:resnet18", random_weights=True).module
    smap = stride_map(model, 224)
    assert smap.total_stride == (32, 32)
    names = {layer.name for layer in smap.layers}
    assert {"maxpool", "layer1.0.relu#1", "layer1.0.relu#2", "layer4.1.relu#2"} <= names
    assert "avgpool" not in names  # global pooling is not a feature map
    assert len(smap.subsampling) == 8  # conv1, maxpool, 3 x (conv1 + downsample conv)
    assert smap.layer("maxpool").nonlinearity == "relu"


def test_vit_patch_embedding_and_token_maps():
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8).eval()
    smap = stride_map(model, 32)
    assert smap.total_stride == (8, 8)
    assert [layer.name for layer in smap.subsampling] == ["patch_embed.proj"]
    assert smap.layer("patch_embed.proj").kind == "patch_embed"
    block = smap.layer("blocks.0")
    assert block.out_shape == (192, 4, 4) and block.token_prefix == 1
    assert block.cumulative_stride == (8, 8)
    # attention internals ([N, heads, L, d]) are not maps
    assert all(layer.out_shape[1:] == (4, 4) for layer in smap.layers)


def test_table_lists_every_layer():
    smap = stride_map(SmallNet().eval(), 32)
    table = smap.table()
    assert len(table.splitlines()) == 1 + len(smap.layers)
    assert "conv3" in table and "<" in table


def test_probe_leaves_the_model_unchanged():
    model = SmallNet().eval()
    x = torch.randn(1, 3, 32, 32)
    before = model(x)
    stride_map(model, 32)
    assert not model._forward_hooks and not model.conv1._forward_pre_hooks
    torch.testing.assert_close(model(x), before)
