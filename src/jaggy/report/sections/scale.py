"""Scale: how the answer depends on the object's size (the study: smaller embedded images fail
more often), from the embed protocols at several sizes S and from the `scale` protocol."""

from __future__ import annotations

import math
from pathlib import Path

from ...figures._charts import Series
from .._registry import register_section
from .._run import read_json
from .._templates import render_template, svg_markup
from ._common import chart_or_none, ci_of, metric_label, protocol_info, value_of


def sized_families(keys: list[str]) -> dict[str, list[tuple[int, str]]]:
    """{protocol name: [(size S, key), ...]} for protocols measured at two or more sizes."""
    families: dict[str, list[tuple[int, str]]] = {}
    for key in keys:
        name, sep, size = key.partition("@")
        if sep and size.isdigit():
            families.setdefault(name, []).append((int(size), key))
    return {n: sorted(v) for n, v in families.items() if len(v) >= 2}


def has_scale_data(run_dir: Path) -> bool:
    summary = read_json(Path(run_dir) / "summary.json")
    if not isinstance(summary, dict) or not isinstance(summary.get("protocols"), dict):
        return False
    keys = list(summary["protocols"])
    return "scale" in keys or bool(sized_families(keys))


def size_chart(runs, metric: str) -> str | None:
    series = []
    for run in runs:
        protocols = run.summary["protocols"]
        for name, members in sized_families(list(protocols)).items():
            entries = [protocols[k].get(metric) for _, k in members]
            if all(value_of(e) is None for e in entries):
                continue
            label = name if len(runs) == 1 else f"{run.label} · {name}"
            series.append(
                Series(
                    label,
                    [s for s, _ in members],
                    [value_of(e) if value_of(e) is not None else math.nan for e in entries],
                    lower=[(ci_of(e) or (math.nan, math.nan))[0] for e in entries],
                    upper=[(ci_of(e) or (math.nan, math.nan))[1] for e in entries],
                )
            )
    return chart_or_none(
        series,
        width=460,
        height=280,
        x_label="embedded image size S (px)",
        y_label=metric_label(metric),
        title=f"{metric_label(metric)} versus embedded size (95% CI)",
    )


def scale_protocol_chart(runs, report) -> str | None:
    series = []
    for run in runs:
        protocol_views = report.protocol_views(run).get("scale") if run.has_predictions else None
        if protocol_views is None:
            continue
        xs, _ = protocol_views.x_values()
        mean_p = protocol_views.mean_p_by_view()
        top1 = protocol_views.correct_by_view()
        prefix = "" if len(runs) == 1 else f"{run.label} · "
        series.append(Series(f"{prefix}mean P(c*)", xs.tolist(), mean_p.tolist()))
        series.append(Series(f"{prefix}fraction with top-1 = c*", xs.tolist(), top1.tolist()))
    return chart_or_none(
        series,
        width=460,
        height=280,
        x_label="embedded image size (px), 1 px per view",
        y_range=(0.0, 1.0),
        y_label="over all images",
        title="scale protocol: the image grows by 1 px per view",
    )


@register_section("scale", "Scale", order=50, present=has_scale_data)
def scale(runs, report):
    charts = [size_chart(runs, "p_top1_change"), size_chart(runs, "jaggedness")]
    charts.append(scale_protocol_chart(runs, report))
    charts = [svg_markup(c) for c in charts if c]
    if not charts:
        return None
    growth = []
    for run in runs:
        info = protocol_info(run, "scale")
        if info.get("first_size"):
            growth.append((run.label, info["first_size"], info.get("steps", "?")))
    return render_template("scale.html.j2", charts=charts, growth=growth)
