"""`jaggy.check`: the release gate as a function, against summaries built by hand."""

from __future__ import annotations

import json
import math

import pytest

import jaggy
from jaggy._gate import parse_rules
from jaggy.errors import ArgumentError


def entry(**values):
    return {
        "n_images": 3,
        **{name: {"value": v, "ci95": [v, v]} for name, v in values.items()},
    }


SUMMARY = {
    "protocols": {
        "crop": entry(p_top1_change=0.10, accuracy=0.80, mac=0.02),
        "black@172": entry(p_top1_change=0.20, accuracy=0.70, mac=float("nan")),
        "black@140": entry(p_top1_change=0.30, accuracy=None, mac=0.05),
    }
}


def outcome(result, key):
    (found,) = [o for o in result.outcomes if o.key == key]
    return found


@pytest.mark.parametrize(
    "rule,passed",
    [
        ("black@140:p_top1_change<=0.30", True),
        ("black@140:p_top1_change<0.30", False),
        ("black@140:p_top1_change<=0.25", False),
        ("black@140:p_top1_change>=0.3", True),
        ("black@140:p_top1_change>0.3", False),
        ("crop:accuracy>0.75", True),
        ("crop:accuracy<0.75", False),
        # '=' means "not worse than", in the metric's direction
        ("crop:p_top1_change=0.1", True),
        ("crop:p_top1_change=0.09", False),
        ("crop:accuracy=0.8", True),
        ("crop:accuracy=0.81", False),
    ],
)
def test_one_key_each_operator(rule, passed):
    result = jaggy.check(SUMMARY, rule)
    assert len(result.outcomes) == 1
    assert result.passed is passed
    only = result.outcomes[0]
    key, metric = only.key, only.rule.metric
    assert key == rule.split(":")[0] and only.passed is passed
    assert only.value == SUMMARY["protocols"][key][metric]["value"]
    assert str(only).startswith("PASS" if passed else "FAIL")


def test_a_name_covers_every_size_and_no_protocol_covers_all():
    result = jaggy.check(SUMMARY, "black:p_top1_change<=0.25")
    assert [(o.key, o.passed) for o in result.outcomes] == [
        ("black@172", True),
        ("black@140", False),
    ]
    assert [o.key for o in result.failures] == ["black@140"]
    everywhere = jaggy.check(SUMMARY, "p_top1_change<=0.5")
    assert [o.key for o in everywhere.outcomes] == ["crop", "black@172", "black@140"]
    assert everywhere.passed


def test_undefined_and_nan_metrics_fail():
    result = jaggy.check(SUMMARY, ["black@172:mac<=1", "black@140:accuracy>=0", "crop:mac<=1"])
    assert [(o.key, o.value, o.passed) for o in result.outcomes] == [
        ("black@172", None, False),
        ("black@140", None, False),
        ("crop", 0.02, True),
    ]
    assert "undefined (no image has a label)" in result.outcomes[1].message
    assert "undefined (no image was measured)" in result.outcomes[0].message
    assert not result.passed


def test_a_rule_that_matches_nothing_fails():
    result = jaggy.check(SUMMARY, "scale:p_top1_change<=1")
    (only,) = result.outcomes
    assert only.key is None and not only.passed and "nothing was measured" in only.message
    assert not jaggy.check({"protocols": {}}, "mac<=1").passed


def test_no_rules_pass_and_rules_keep_their_order():
    assert jaggy.check(SUMMARY, []).passed
    result = jaggy.check(SUMMARY, ["crop:mac<=1", "crop:accuracy>=0.5"])
    assert [o.rule.metric for o in result.outcomes] == ["mac", "accuracy"]
    assert str(result).splitlines() == [str(o) for o in result.outcomes]


def test_summary_from_a_folder_a_file_or_a_result(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))
    for source in (tmp_path, tmp_path / "summary.json", str(tmp_path)):
        assert jaggy.check(source, "crop:mac<=0.02").passed

    class Result:
        summary = SUMMARY

    assert not jaggy.check(Result(), "crop:mac<0.02").passed
    with pytest.raises(ArgumentError, match="no summary"):
        jaggy.check(tmp_path / "missing", "mac<=1")
    with pytest.raises(ArgumentError, match="needs a summary"):
        jaggy.check({"nope": 1}, "mac<=1")


@pytest.mark.parametrize(
    "rule,message",
    [
        ("mac", "expected [PROTOCOL:]METRIC"),
        ("wobble<=1", "unknown metric 'wobble'"),
        ("crop:mac<=x", "'x' is not a number"),
        ("crop:mac<=nan", "not NaN"),
        ("crop:mac=<1", "'<1' is not a number"),
        (3, "a rule is a string"),
    ],
)
def test_bad_rules_are_refused_before_anything_is_read(rule, message):
    with pytest.raises(ArgumentError, match=message.replace("[", r"\[")):
        jaggy.check("/does/not/exist", rule)


def test_the_cli_form_takes_only_not_worse_than():
    (rule,) = parse_rules("crop:mac=0.1", ["crop"], operators=["="], option="--fail-under")
    assert (rule.protocol, rule.metric, rule.op, rule.bound) == ("crop", "mac", "=", 0.1)
    with pytest.raises(ArgumentError, match="--fail-under 'mac<=0.1': expected METRIC=VALUE"):
        parse_rules("mac<=0.1", operators=["="], option="--fail-under")
    with pytest.raises(ArgumentError, match="not a protocol of this run"):
        parse_rules("black@140:mac=1", ["crop"], operators=["="])
    assert math.isinf(parse_rules("mac<=inf")[0].bound)


def test_a_reference_gate_agrees_on_random_summaries():
    """The gate against an obvious transcription of the rule, on random values."""
    import random

    rng = random.Random(0)
    ops = {"<=": lambda v, b: v <= b, "<": lambda v, b: v < b, ">=": lambda v, b: v >= b}
    for _ in range(200):
        value, bound = round(rng.random(), 2), round(rng.random(), 2)
        op = rng.choice(list(ops))
        summary = {"protocols": {"crop": entry(mac=value)}}
        assert jaggy.check(summary, f"crop:mac{op}{bound}").passed == ops[op](value, bound)
        # mac is lower-is-better: '=' is '<='
        assert jaggy.check(summary, f"mac={bound}").passed == (value <= bound)
