"""Remedy specs: parsing, clear errors, and applying them to loaded models."""

from __future__ import annotations

import pytest
import torch

from jaggy.errors import ArgumentError
from jaggy.models import load_model
from jaggy.remedies import (
    BlurPool2d,
    PolyphaseDownsample2d,
    RemedySpec,
    apply_remedy,
    list_remedies,
    parse_remedy,
)
from jaggy.remedies._spec import remedy_help


@pytest.mark.parametrize(
    "spec,canonical",
    [
        ("blurpool", "blurpool:4:reflect"),
        ("blurpool:3", "blurpool:3:reflect"),
        ("BlurPool:5:Circular", "blurpool:5:circular"),
        ("blurpool:2:zeros", "blurpool:2:zero"),
        ("blurpool::replicate", "blurpool:4:replicate"),
        (" aps ", "aps"),
        ("aps:1", "aps"),
        ("aps:3", "aps:3"),
        ("circular", "circular"),
    ],
)
def test_valid_specs_parse_to_a_canonical_form(spec, canonical):
    parsed = parse_remedy(spec)
    assert str(parsed) == canonical
    assert parse_remedy(str(parsed)) == parsed
    assert parse_remedy(parsed) is parsed


@pytest.mark.parametrize(
    "spec,match",
    [
        ("", "empty remedy spec"),
        ("antialias", "unknown remedy 'antialias'; valid remedies: blurpool"),
        ("blurpool:9", "integer from 1 to 7, got '9'"),
        ("blurpool:x", "integer from 1 to 7, got 'x'"),
        ("blurpool:4:mirror", "unknown padding 'mirror'; choose one of: reflect, replicate"),
        ("blurpool:4:reflect:1", "too many fields"),
        ("aps:0", "integer from 1 to 7"),
        ("aps:3:circular", "too many fields; use aps\\[:FILT\\]"),
        ("circular:1", "circular takes no options"),
    ],
)
def test_bad_specs_raise_argument_errors_that_say_what_is_valid(spec, match):
    with pytest.raises(ArgumentError, match=match):
        parse_remedy(spec)


def test_unknown_spec_lists_every_valid_remedy():
    with pytest.raises(ArgumentError) as info:
        parse_remedy("nope")
    for syntax in ("blurpool[:FILT[:PAD]]", "aps[:FILT]", "circular"):
        assert syntax in str(info.value)


def test_list_and_help():
    assert list_remedies() == ["aps", "blurpool", "circular"]
    text = remedy_help()
    assert "blurpool[:FILT[:PAD]]" in text and "Zhang" in text and "Chaman" in text


def test_apply_remedy_converts_a_loaded_model_in_place_and_records_it():
    loaded = load_model("py:tinynets:tiny")
    module = loaded.module
    hash_before = loaded.weights_hash()
    assert apply_remedy(loaded, "blurpool:3") is loaded
    apply_remedy(loaded, RemedySpec("circular"))
    assert loaded.remedies == ["blurpool:3:reflect", "circular"]
    assert loaded.module is module and not loaded.module.training
    assert loaded.weights_hash() == hash_before  # weights and keys untouched
    assert sum(isinstance(m, BlurPool2d) for m in module.modules()) == 2
    assert loaded.describe()["remedies"] == ["blurpool:3:reflect", "circular"]
    with torch.no_grad():
        assert loaded.module(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_bad_spec_changes_nothing():
    loaded = load_model("py:tinynets:tiny")
    before = repr(loaded.module)
    with pytest.raises(ArgumentError):
        apply_remedy(loaded, "blurpool:0")
    assert repr(loaded.module) == before and loaded.remedies == []


def test_apply_remedy_on_a_bare_module_and_bad_targets():
    from tinynets import TinyCNN

    module = apply_remedy(TinyCNN(), "aps")
    assert any(isinstance(m, PolyphaseDownsample2d) for m in module.modules())
    with pytest.raises(ArgumentError, match="LoadedModel or a torch.nn.Module"):
        apply_remedy("not a model", "aps")


def test_load_model_applies_remedies_in_order():
    loaded = load_model("py:tinynets:tiny", remedies=["aps", "circular"])
    assert loaded.remedies == ["aps", "circular"]
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        reference = loaded.module(x)
        for shift in [(1, 0), (0, 3), (5, 7)]:
            out = loaded.module(torch.roll(x, shift, (2, 3)))
            torch.testing.assert_close(out, reference, rtol=0, atol=1e-5)
    with pytest.raises(ArgumentError, match="valid remedies"):
        load_model("py:tinynets:tiny", remedies=["sharpen"])


def test_checkpoint_of_a_converted_model_loads_with_the_same_remedy(tmp_path):
    # Keys are unchanged, so `--checkpoint` (loaded before remedies) fits a fine-tuned model.
    tuned = load_model("py:tinynets:tiny", remedies=["blurpool:4"])
    with torch.no_grad():
        for parameter in tuned.module.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    path = tmp_path / "tuned.pt"
    torch.save(tuned.module.state_dict(), path)
    again = load_model("py:tinynets:tiny", checkpoint=path, remedies=["blurpool:4"])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again.module(x), tuned.module(x))


@pytest.mark.slow
def test_real_lite0_with_each_remedy_keeps_recognising_a_photo():
    # Pretrained weights survive the surgery: without fine-tuning the anti-aliased and the
    # polyphase models still recognise the sample cat (ImageNet classes 281-285 are cats).
    from skimage import data

    loaded = load_model("jaggy:efficientnet_lite0")
    prep = loaded.preprocessing
    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1)
    image = torch.nn.functional.interpolate(
        image[None].float() / 255, size=(prep.input_size,) * 2, mode="bilinear", antialias=True
    )[0]
    x = prep.normalize(image.clamp(0, 1))[None]
    for remedies in ([], ["blurpool:4"], ["aps", "circular"]):
        variant = load_model("jaggy:efficientnet_lite0", remedies=remedies)
        with torch.no_grad():
            top5 = variant.module(x).topk(5).indices[0].tolist()
        assert set(top5) & {281, 282, 283, 284, 285}, (remedies, top5)
