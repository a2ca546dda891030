"""Photographer's bias (`jaggy bias` folders): where the dataset's objects sit and how large
they are, in the image and in the model's input, and, when the folder joined an audit run,
every metric by object size and by distance from the image centre (Azulay & Weiss, JMLR 2019,
section 5)."""

from __future__ import annotations

import math
from pathlib import Path

from ...bias._figures import heatmap_svg, histogram_svg
from ...bias._outputs import WRITTEN_BY
from ...figures._charts import Series, line_chart
from .._registry import register_section
from .._run import read_json
from .._templates import render_template, svg_markup
from ._common import metric_label

CHART_METRICS = ("p_top1_change", "mac", "jaggedness", "accuracy")


def _frame_rows(frame: dict) -> list[tuple[str, object]]:
    sizes = frame.get("size_quantiles") or {}
    aspects = frame.get("aspect_quantiles") or {}
    return [
        ("boxes", frame.get("n_boxes")),
        ("images", frame.get("n_images")),
        ("centre mean [x, y]", _pair(frame.get("center_mean"))),
        ("centre std [x, y]", _pair(frame.get("center_std"))),
        ("size mean (sqrt of area share)", _number(frame.get("size_mean"))),
        ("size median [5%, 95%]", _median(sizes)),
        ("aspect median [5%, 95%]", _median(aspects)),
        ("centre in the middle third", _number(frame.get("frac_center_in_middle_third"))),
        ("KL of centres from uniform (nats)", _number(frame.get("center_kl_uniform"))),
    ]


def _number(value, digits: int = 3) -> str | None:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return f"{value:.{digits}f}"


def _pair(values) -> str | None:
    if not isinstance(values, list) or len(values) != 2:
        return None
    return f"[{_number(values[0])}, {_number(values[1])}]"


def _median(quantiles: dict) -> str | None:
    if not quantiles:
        return None
    return (
        f"{_number(quantiles.get('0.5'))} [{_number(quantiles.get('0.05'))}, "
        f"{_number(quantiles.get('0.95'))}]"
    )


def _binned_chart(by_bin: dict, title: str, x_label: str) -> str | None:
    """Each metric's mean and CI per bin, one line per protocol and metric."""
    series = []
    for key, entry in by_bin.items():
        edges = entry.get("edges") or []
        middles = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=False)]
        for metric in CHART_METRICS:
            cells = (entry.get("metrics") or {}).get(metric)
            if not cells or all(c.get("value") is None for c in cells):
                continue
            value = [math.nan if c.get("value") is None else c["value"] for c in cells]
            ci = [c.get("ci95") or [None, None] for c in cells]
            series.append(
                Series(
                    f"{key} · {metric_label(metric)}",
                    middles,
                    value,
                    lower=[math.nan if lo is None else lo for lo, _ in ci],
                    upper=[math.nan if hi is None else hi for _, hi in ci],
                    point_titles=[f"n = {c.get('n', 0)}" for c in cells],
                )
            )
    if not series:
        return None
    return line_chart(series, width=460, height=280, x_label=x_label, title=title)


def _reweighted_rows(reweighted: dict) -> list[list]:
    rows = []
    for key, metrics in reweighted.items():
        for metric, entry in metrics.items():
            if metric not in CHART_METRICS:
                continue
            rows.append(
                [
                    key,
                    metric_label(metric),
                    {"entry": entry.get("dataset")},
                    {"entry": entry.get("uniform")},
                    _number(entry.get("uniform_coverage"), 2) or "–",
                ]
            )
    return rows


def has_bias_results(run_dir) -> bool:
    """A bias.json that `jaggy bias` wrote (another program's file of that name is not)."""
    stats = read_json(Path(run_dir) / "bias.json")
    return isinstance(stats, dict) and stats.get("written_by") == WRITTEN_BY


@register_section("bias", "Photographer's bias", order=75, present=has_bias_results)
def bias(runs, report):
    blocks = []
    for run in runs:
        stats = read_json(run.path / "bias.json")
        if not isinstance(stats, dict) or "histograms" not in stats:
            continue
        name = str(stats.get("annotations", "")).rsplit("/", 1)[-1]
        charts = [
            heatmap_svg(stats["histograms"]["center_histogram"], "box centres (image)"),
            histogram_svg(
                stats["histograms"]["size_histogram"],
                "object size (image)",
                "sqrt(box area / image area)",
            ),
        ]
        frames = [("image frame", _frame_rows(stats))]
        input_frame = stats.get("input_frame")
        if isinstance(input_frame, dict) and input_frame.get("histograms"):
            r = input_frame.get("input_size")
            charts.append(
                heatmap_svg(
                    input_frame["histograms"]["center_histogram"],
                    f"box centres (model input, {r} px)",
                )
            )
            rows = _frame_rows(input_frame)
            rows.append(("cut by the centre crop", input_frame.get("n_cut")))
            rows.append(("left out by the crop", input_frame.get("n_outside")))
            frames.append((f"model input ({input_frame.get('model') or 'preprocessing'})", rows))
        skipped = {k: v for k, v in (stats.get("skipped") or {}).items() if v}
        invariance = stats.get("invariance") or {}
        invariance_charts = [
            _binned_chart(
                invariance.get("by_size") or {},
                "metrics by object size (95% CI)",
                "object size: sqrt(box area / image area)",
            ),
            _binned_chart(
                invariance.get("by_position") or {},
                "metrics by distance from the image centre (95% CI)",
                "distance of the object's centre (0 centre, 1 corner)",
            ),
        ]
        blocks.append(
            {
                "run": run,
                "name": name,
                "format": stats.get("format"),
                "skipped": ", ".join(f"{k} {v}" for k, v in skipped.items()) or "none",
                "frames": frames,
                "charts": [svg_markup(c) for c in charts if c],
                "invariance": invariance,
                "invariance_charts": [svg_markup(c) for c in invariance_charts if c],
                "reweighted": _reweighted_rows(invariance.get("reweighted") or {}),
            }
        )
    if not blocks:
        return None
    return render_template("bias.html.j2", blocks=blocks)
