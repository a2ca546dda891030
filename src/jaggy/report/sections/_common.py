"""Helpers shared by several sections: metric names and directions, winners, descriptions."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...figures._charts import Series, line_chart
from .._run import RunFolder, read_json
from .._templates import render_template

# Columns of compare.json that are not metrics (metrics name themselves in their registry).
COST_LABELS = {
    "ms_per_image": "ms / image",
    "ms_ratio_to_base": "time × base",
    "params": "parameters",
}


def _registered(name: str):
    from ...metrics import list_metrics, metric_info

    return metric_info(name) if name in list_metrics() else None


def metric_digits(metric: str) -> int:
    """Digits shown after the point."""
    info = _registered(metric)
    if info is not None:
        return info.digits
    return 2 if metric == "ms_per_image" else 3


def metric_label(name: str) -> str:
    info = _registered(name)
    if info is not None:
        return info.label
    return COST_LABELS.get(name, name.replace("_", " "))


def higher_is_better(name: str) -> bool | None:
    """The metric's direction from jaggy's registry (None for a metric it does not know)."""
    if name == "ms_per_image":
        return False
    from ...metrics import metric_info

    try:
        return metric_info(name).higher_is_better
    except KeyError:
        return None


def metric_help(name: str) -> str:
    """Header tooltip: what the metric is and which way is better."""
    from ...metrics import metric_info

    try:
        info = metric_info(name)
    except KeyError:
        return ""
    better = "higher is better" if info.higher_is_better else "lower is better"
    return f"{info.description} ({better})"


def known_metrics() -> list[str]:
    from ...metrics import list_metrics

    return list(list_metrics())


def finite(value: object) -> float | None:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def winners(values: Sequence[float | None], higher: bool | None) -> set[int]:
    """Indices of the best values (ties share the win); none without a direction or with
    fewer than two values to compare."""
    present = [(i, v) for i, v in enumerate(values) if v is not None]
    if higher is None or len(present) < 2:
        return set()
    best = max(v for _, v in present) if higher else min(v for _, v in present)
    return {i for i, v in present if abs(v - best) <= 1e-12 * max(1.0, abs(best))}


def clear_win(cis: Sequence[tuple[float, float] | None], win: set[int]) -> bool:
    """True when a single winner's CI overlaps no other CI."""
    if len(win) != 1:
        return False
    (w,) = win
    if cis[w] is None:
        return False
    lo, hi = cis[w]
    for i, ci in enumerate(cis):
        if i == w or ci is None:
            continue
        if not (ci[1] < lo or ci[0] > hi):
            return False
    return True


def ci_of(entry: object) -> tuple[float, float] | None:
    if isinstance(entry, dict):
        ci = entry.get("ci95")
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            lo, hi = finite(ci[0]), finite(ci[1])
            if lo is not None and hi is not None:
                return lo, hi
    return None


def value_of(entry: object) -> float | None:
    if isinstance(entry, dict):
        return finite(entry.get("value"))
    return finite(entry)


def protocol_info(run: RunFolder, key: str) -> dict:
    """The manifest's parameters of protocol `key` (empty when unknown)."""
    for params in (run.manifest or {}).get("protocols") or []:
        if isinstance(params, dict) and params.get("key") == key:
            return params
    return {}


def protocol_description(run: RunFolder, key: str) -> str:
    """One line on what the protocol's views are, from the protocol registry."""
    name = protocol_info(run, key).get("name") or key.split("@")[0]
    try:
        from ...protocols._registry import protocol_class

        text = protocol_class(name).description
    except Exception:
        return ""
    size = protocol_info(run, key).get("size")
    return f"{text}" + (f" (S = {size} px)" if size else "")


def metric_chart(
    groups: Sequence[tuple[str, Sequence[str], Sequence[dict | None]]],
    metric: str,
    *,
    width: int = 620,
    height: int = 280,
    title: str | None = None,
    y_label: str | None = None,
) -> str:
    """Dot-and-whisker chart of one metric: categories (e.g. protocols) on x, one series per
    group (e.g. run) with 95% CIs; groups are offset slightly so whiskers do not overlap.

    groups: (series label, category names, summary entries {"value", "ci95"} per category).
    y_label: the axis title (default: the metric's label).
    """
    categories: list[str] = []
    for _, cats, _ in groups:
        for c in cats:
            if c not in categories:
                categories.append(c)
    series = []
    n = len(groups)
    for g, (label, cats, entries) in enumerate(groups):
        offset = (g - (n - 1) / 2) * min(0.12, 0.6 / max(n, 1))
        xs, ys, lo, hi = [], [], [], []
        for c, entry in zip(cats, entries, strict=True):
            v = value_of(entry)
            ci = ci_of(entry)
            xs.append(categories.index(c) + offset)
            ys.append(v if v is not None else math.nan)
            lo.append(ci[0] if ci else math.nan)
            hi.append(ci[1] if ci else math.nan)
        series.append(Series(label, xs, ys, lower=lo, upper=hi, width=0.0))
    ticks = [(float(i), c) for i, c in enumerate(categories)]
    chart_width = max(width, 84 * len(categories) + 60)
    return line_chart(
        series,
        width=chart_width,
        height=height,
        x_ticks=ticks,
        y_label=y_label or metric_label(metric),
        title=title,
        legend=n > 1,
        description=f"{metric_label(metric)} with 95% CIs per category",
    )


def chart_or_none(series: Sequence[Series], **options) -> str | None:
    """`line_chart(series, **options)`, or None without a series: the section leaves the
    chart out rather than draw empty axes."""
    return line_chart(series, **options) if series else None


def file_section(runs, file: str, template: str, block) -> str | None:
    """A section of one block per run: `block(run, record)` of the run's JSON `file` (None
    when the file is missing or not what the section reads); None when no run has one."""
    blocks = [b for run in runs if (b := block(run, read_json(run.path / file))) is not None]
    return render_template(template, blocks=blocks) if blocks else None
