"""The worked example in the metrics' module docstring stays true."""

import doctest

from jaggy.metrics import _functional


def test_metric_docstring_examples():
    result = doctest.testmod(_functional, verbose=False)
    assert result.attempted > 0 and result.failed == 0
