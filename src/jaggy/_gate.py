"""The release gate: rules such as `black@140:p_top1_change<=0.25` checked against a summary.

A rule is `[PROTOCOL:]METRIC OP VALUE`. PROTOCOL is one protocol key (`black@140`) or a
protocol name, which covers every key of that name (`black` = `black@172`, `black@140`, ...);
without it the rule applies to every protocol of the run. OP is `<=`, `<`, `>=` or `>`, or `=`,
which means "not worse than VALUE" in the metric's own direction (at most VALUE for a
lower-is-better metric such as `p_top1_change`, at least VALUE for `accuracy`): the form that
`jaggy audit --fail-under` takes. A metric that could not be measured (undefined, NaN, no image
with a label) fails its rule: a gate must not pass on nothing.
"""

from __future__ import annotations

import json
import math
import operator
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ArgumentError
from .metrics import list_metrics, metric_info

# longest first, so that '<=' is not read as '<'
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
NOT_WORSE = "="
_RULE_EXAMPLE = "e.g. black@140:p_top1_change<=0.25 or crop:accuracy>=0.7"


@dataclass(frozen=True)
class Rule:
    """One parsed rule. `protocol` is None for every protocol of the run; `op` is one of
    OPERATORS or '=' (not worse than `bound`, in the metric's direction)."""

    text: str
    protocol: str | None
    metric: str
    op: str
    bound: float

    def passes(self, value: float) -> bool:
        if self.op == NOT_WORSE:
            higher = metric_info(self.metric).higher_is_better
            return value >= self.bound if higher else value <= self.bound
        return OPERATORS[self.op](value, self.bound)

    def matching_keys(self, keys: Iterable[str]) -> list[str]:
        """The protocol keys this rule covers (a name covers every size of an embed protocol)."""
        keys = list(keys)
        if self.protocol is None:
            return keys
        return [
            k
            for k in keys
            if k == self.protocol or ("@" not in self.protocol and k.split("@")[0] == self.protocol)
        ]


@dataclass(frozen=True)
class RuleOutcome:
    """A rule measured on one protocol key. `key` is None when no key matched (the rule
    fails); `value` is None when the metric is undefined there (the rule fails)."""

    rule: Rule
    key: str | None
    value: float | None
    passed: bool
    message: str

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.message}"


@dataclass(frozen=True)
class CheckResult:
    """Every rule on every protocol key it covers, in the order the rules were given."""

    outcomes: tuple[RuleOutcome, ...]

    @property
    def passed(self) -> bool:
        """True when every rule passed on every key it covers."""
        return all(o.passed for o in self.outcomes)

    @property
    def failures(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if not o.passed]

    def __str__(self) -> str:
        return "\n".join(str(o) for o in self.outcomes)


def parse_rules(
    rules: str | Iterable[str],
    protocols: Iterable[str] | None = None,
    *,
    operators: Iterable[str] = (*OPERATORS, NOT_WORSE),
    option: str = "rule",
) -> list[Rule]:
    """Parse and validate rules before any work.

    Args:
        rules: one rule or several (see the module docstring for the syntax).
        protocols: when given, the protocol names of the run; a rule naming another protocol is
            refused (embed protocols take a size: `black@140`).
        operators: the operators accepted (`jaggy audit --fail-under` accepts only '=').
        option: how error messages name the rule (`--fail-under` in the CLI).

    Raises:
        ArgumentError: a malformed rule, an unknown metric or protocol, a bound that is not a
            number.
    """
    specs = [rules] if isinstance(rules, str) or not isinstance(rules, Iterable) else list(rules)
    allowed = list(operators)
    known = list_metrics()
    names = None if protocols is None else list(protocols)
    parsed = []
    for spec in specs:
        if not isinstance(spec, str):
            raise ArgumentError(f"{option} {spec!r}: a rule is a string, {_RULE_EXAMPLE}")
        left, op, value = _split(spec, allowed)
        if op is None:
            expected = (
                "METRIC=VALUE, e.g. p_top1_change=0.1 or crop:accuracy=0.7"
                if allowed == [NOT_WORSE]
                else f"[PROTOCOL:]METRIC{'|'.join(allowed)}VALUE, {_RULE_EXAMPLE}"
            )
            raise ArgumentError(f"{option} '{spec}': expected {expected}")
        protocol, _, metric = left.strip().rpartition(":")
        if metric not in known:
            raise ArgumentError(
                f"{option}: unknown metric '{metric}'; choose from {', '.join(known)}"
            )
        if protocol and names is not None and protocol.split("@")[0] not in names:
            raise ArgumentError(
                f"{option} '{spec}': '{protocol}' is not a protocol of this run "
                f"({', '.join(names)}); embed protocols take a size: black@140"
            )
        try:
            bound = float(value)
        except ValueError:
            raise ArgumentError(f"{option} '{spec}': '{value}' is not a number") from None
        if math.isnan(bound):
            raise ArgumentError(f"{option} '{spec}': the bound must be a number, not NaN")
        parsed.append(Rule(spec, protocol or None, metric, op, bound))
    return parsed


def _split(spec: str, allowed: list[str]) -> tuple[str, str | None, str]:
    """'crop:mac<=0.1' -> ('crop:mac', '<=', '0.1'); the first operator found, two-character
    operators before one-character ones."""
    for op in sorted(allowed, key=len, reverse=True):
        left, sep, value = spec.partition(op)
        if sep and not any(c in left for c in "<>="):
            return left, op, value.strip()
    return spec, None, ""


def check(
    summary: Mapping | str | os.PathLike | object,
    rules: str | Iterable[str | Rule],
) -> CheckResult:
    """Check a run's summary against release rules.

    Args:
        summary: the summary (the dict of summary.json), a run folder, a summary.json path, or
            any result with a `summary` attribute (`jaggy.audit(...)`'s).
        rules: one rule or several, e.g. `"black@140:p_top1_change<=0.25"` (see the module
            docstring), or parsed `Rule`s.

    Returns:
        A CheckResult: one outcome per (rule, protocol key) with the measured value and whether
        it passed; `.passed` is True only when every outcome passed. A rule that matches no
        protocol, or whose metric is undefined (NaN, no labels), fails.

    Raises:
        ArgumentError: a malformed rule or an unknown metric (before anything is read).
    """
    single = isinstance(rules, (str, Rule)) or not isinstance(rules, Iterable)
    items = [rules] if single else list(rules)
    parsed = [r for r in items if isinstance(r, Rule)]
    if len(parsed) != len(items):
        parsed = [r if isinstance(r, Rule) else parse_rules([r])[0] for r in items]
    return CheckResult(tuple(_outcomes(_summary_protocols(summary), parsed)))


def _outcomes(protocols: Mapping, rules: list[Rule]) -> list[RuleOutcome]:
    outcomes = []
    for rule in rules:
        keys = rule.matching_keys(protocols)
        if not keys:
            outcomes.append(
                RuleOutcome(
                    rule,
                    None,
                    None,
                    False,
                    f"{rule.protocol or 'every protocol'}: nothing was measured "
                    "(no protocol of that name, or every image was skipped)",
                )
            )
            continue
        info = metric_info(rule.metric)
        for key in keys:
            value = _value(protocols[key], rule.metric)
            if value is None:
                reason = "no image has a label" if info.needs_labels else "no image was measured"
                entry = protocols[key]
                nonfinite = entry.get("n_nonfinite_views", 0) if isinstance(entry, Mapping) else 0
                if nonfinite:
                    reason = f"{nonfinite} view(s) gave NaN or Inf outputs; see manifest.json"
                message = f"{key} {rule.metric} is undefined ({reason})"
                outcomes.append(RuleOutcome(rule, key, None, False, message))
                continue
            passed = rule.passes(value)
            message = f"{key} {rule.metric} = {value:.4f} " + _relation(rule, info, passed)
            outcomes.append(RuleOutcome(rule, key, value, passed, message))
    return outcomes


def _relation(rule: Rule, info, passed: bool) -> str:
    if rule.op == NOT_WORSE:
        if passed:
            return f"is within the bound {rule.bound}"
        return f"is {'below' if info.higher_is_better else 'above'} the bound {rule.bound}"
    return f"{'satisfies' if passed else 'violates'} {rule.op} {rule.bound}"


def _value(entry: Mapping, metric: str) -> float | None:
    cell = entry.get(metric) if isinstance(entry, Mapping) else None
    value = cell.get("value") if isinstance(cell, Mapping) else cell
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _summary_protocols(summary) -> Mapping:
    """The `protocols` mapping of a summary given as a dict, a path or a result object."""
    if isinstance(summary, (str, os.PathLike)):
        path = Path(summary)
        if path.is_dir():
            path = path / "summary.json"
        if not path.is_file():
            raise ArgumentError(
                f"no summary at {path}: give a finished run folder (the --out of jaggy audit) "
                "or its summary.json"
            )
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ArgumentError(f"cannot read {path}: {exc}") from None
    elif not isinstance(summary, Mapping) and hasattr(summary, "summary"):
        summary = summary.summary
    if hasattr(summary, "to_dict") and not isinstance(summary, Mapping):
        summary = summary.to_dict()
    if not isinstance(summary, Mapping) or not isinstance(summary.get("protocols"), Mapping):
        raise ArgumentError(
            "check needs a summary (summary.json's content with a 'protocols' mapping), "
            f"a run folder or an audit result, got {type(summary).__name__}"
        )
    return summary["protocols"]
