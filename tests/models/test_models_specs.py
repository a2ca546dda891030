"""Model specs: parsing, offline failures, user factories, checkpoints, embedded weights."""

from __future__ import annotations

import pytest
import torch

import jaggy
from jaggy.errors import ModelSpecError
from jaggy.models import load_model
from jaggy.models._embedded import pair_state_dicts
from jaggy.models._load import parse_model_spec


def test_parse_every_spec_kind():
    assert parse_model_spec("resnet18") == parse_model_spec("timm:resnet18")
    assert parse_model_spec("tv:resnet50:IMAGENET1K_V2").weights == "IMAGENET1K_V2"
    spec = parse_model_spec("py:pkg.mod:make")
    assert (spec.kind, spec.name, spec.weights) == ("py", "pkg.mod", "make")
    assert str(parse_model_spec("jaggy:efficientnet_lite1")) == "jaggy:efficientnet_lite1"


@pytest.mark.parametrize(
    "spec,match",
    [
        ("jaggy:efficientnet_lite9", "jaggy:efficientnet_lite0"),
        ("foo:bar", "unknown model spec kind"),
        ("timm:definitely_not_a_model", "unknown timm model"),
        ("tv:nonexistent_net", "unknown torchvision model"),
        ("py:tinynets", "py:package.module:factory"),
        ("py:tinynets:missing", "no callable"),
        ("py:tinynets:not_a_module", "not a torch.nn.Module"),
        ("py:no_such_module_xyz:f", "cannot import"),
        ("", "empty"),
    ],
)
def test_bad_specs_fail_with_a_clear_message(spec, match):
    with pytest.raises(ModelSpecError, match=match):
        load_model(spec)


def test_specs_that_need_a_download_fail_fast_naming_offline_models():
    for spec in ("timm:resnet18", "tv:resnet18"):
        with pytest.raises(ModelSpecError, match="efficientnet_lite0"):
            load_model(spec)


def test_random_weights_need_no_download():
    loaded = load_model("tv:resnet18", random_weights=True)
    assert loaded.preprocessing.input_size == 224
    assert loaded.preprocessing.source.startswith("torchvision")
    assert loaded.num_classes == 1000 and loaded.weights == "random"


def test_python_factory_preprocessing_and_classes():
    loaded = load_model("py:tinynets:tiny")
    assert loaded.preprocessing.input_size == 32
    assert loaded.num_classes == 10
    assert not loaded.module.training


def test_checkpoint_loads_with_weights_only(tmp_path):
    source = load_model("py:tinynets:tiny").module
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    path = tmp_path / "ckpt.pt"
    torch.save(source.state_dict(), path)
    loaded = load_model("py:tinynets:tiny", checkpoint=path)
    assert torch.equal(loaded.module.head.weight, source.head.weight)
    assert loaded.weights == "checkpoint:ckpt.pt"
    # a pickled object (not a plain state dict) is refused by weights_only
    bad = tmp_path / "pickle.pt"
    torch.save({"model": source}, bad)
    with pytest.raises(ModelSpecError, match="weights_only"):
        load_model("py:tinynets:tiny", checkpoint=bad)
    with pytest.raises(ModelSpecError, match="does not exist"):
        load_model("py:tinynets:tiny", checkpoint=tmp_path / "none.pt")


def test_pairing_checks_every_shape():
    a = {
        "x.weight": torch.zeros(2, 3),
        "bn.num_batches_tracked": torch.tensor(0),
        "y": torch.zeros(4),
    }
    b = {"p": torch.zeros(2, 3), "q": torch.zeros(4), "bn2.num_batches_tracked": torch.tensor(0)}
    paired = pair_state_dicts(a, b)
    assert set(paired) == {"p", "q", "bn2.num_batches_tracked"}
    with pytest.raises(ModelSpecError, match="does not fit"):
        pair_state_dicts(a, {"p": torch.zeros(3, 2), "q": torch.zeros(4)})
    with pytest.raises(ModelSpecError, match="tensors"):
        pair_state_dicts(a, {"p": torch.zeros(2, 3)})


@pytest.mark.slow
def test_embedded_lite0_pairs_247_tensors_and_records_preprocessing():
    loaded = jaggy.load_model("jaggy:efficientnet_lite0")
    tensors = [k for k in loaded.module.state_dict() if not k.endswith("num_batches_tracked")]
    assert len(tensors) == 247
    prep = loaded.preprocessing
    assert (prep.input_size, prep.interpolation, prep.mean, prep.std) == (
        224,
        "bicubic",
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
    )
    description = loaded.describe()
    assert len(description["weights_sha256"]) == 64
    assert description["preprocessing"]["input_size"] == 224
