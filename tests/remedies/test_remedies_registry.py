"""The remedy registry: every registered remedy gets the same checks, and a new one registered
with `@register_remedy` is accepted everywhere a spec is."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from jaggy.errors import ArgumentError
from jaggy.models import load_model
from jaggy.remedies import (
    RemedySpec,
    _spec,
    apply_remedy,
    list_remedies,
    parse_remedy,
    register_remedy,
    remedy_info,
)
from jaggy.remedies._spec import remedy_help


@pytest.mark.parametrize("name", list_remedies())
def test_every_registered_remedy_parses_applies_and_records_itself(name):
    info = remedy_info(name)
    assert info.name == name and info.syntax.startswith(name) and info.summary
    spec = parse_remedy(name)
    assert parse_remedy(str(spec)) == spec and str(spec).startswith(name)
    loaded = load_model("py:tinynets:tiny")
    x = torch.randn(2, 3, 32, 32)
    apply_remedy(loaded, name)
    assert loaded.remedies == [str(spec)]
    assert loaded.module(x).shape == (2, 10)
    assert info.syntax in remedy_help()


@pytest.fixture
def halve():
    """A test remedy: divides every convolution's weights by 2**N (easy to see)."""

    def parse(fields, spec):
        if len(fields) > 1:
            raise ArgumentError(f"remedy '{spec}': use halve[:N]")
        return RemedySpec("halve", int(fields[0]) if fields else 1)

    @register_remedy(
        "halve",
        syntax="halve[:N]",
        summary="divide every convolution's weights by 2**N (a test remedy)",
        parse=parse,
        canonical=lambda spec: f"halve:{spec.filt_size}",
    )
    def apply(module: nn.Module, spec: RemedySpec) -> nn.Module:
        with torch.no_grad():
            for layer in module.modules():
                if isinstance(layer, nn.Conv2d):
                    layer.weight.div_(2**spec.filt_size)
        return module

    yield apply
    del _spec._REMEDIES["halve"]


def test_a_new_remedy_is_accepted_everywhere(halve):
    assert "halve" in list_remedies()
    assert str(parse_remedy("HALVE")) == "halve:1"
    before = load_model("py:tinynets:tiny")
    after = load_model("py:tinynets:tiny", remedies=["halve:2"])
    assert after.remedies == ["halve:2"]
    weight = after.module.features[0].weight
    assert torch.allclose(weight * 4, before.module.features[0].weight)
    with pytest.raises(ArgumentError, match="use halve"):
        parse_remedy("halve:1:2")
    assert "halve[:N]" in remedy_help()


def test_a_remedy_without_options_refuses_them():
    @register_remedy("nothing", summary="changes nothing (a test remedy)")
    def apply(module, spec):
        return module

    try:
        assert str(parse_remedy("nothing")) == "nothing"
        with pytest.raises(ArgumentError, match="nothing takes no options"):
            parse_remedy("nothing:1")
    finally:
        del _spec._REMEDIES["nothing"]


@pytest.mark.parametrize("name", ["Blur", "a:b", "a+b", ""])
def test_bad_remedy_names_are_refused(name):
    with pytest.raises(ValueError, match="lower case"):
        register_remedy(name)


def test_unknown_remedy_info_lists_the_valid_ones():
    with pytest.raises(ArgumentError, match="valid remedies: blurpool"):
        remedy_info("antialias")
