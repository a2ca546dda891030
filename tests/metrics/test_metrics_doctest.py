"""The worked example in the metrics' module docstring stays true."""

import doctest

import pytest

from jaggy.metrics import _by_view, _functional, _worst_case


@pytest.mark.parametrize("module", [_by_view, _functional, _worst_case])
def test_metric_docstring_examples(module):
    result = doctest.testmod(module, verbose=False)
    assert result.attempted > 0 and result.failed == 0
