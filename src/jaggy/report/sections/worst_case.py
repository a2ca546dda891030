"""Worst case: robust accuracy on each worst-case set (`--worst-case`), and the curves of the
first failing transformation (fraction of images still robust when the set is cut at |shift|
<= r, for the sets of shifts, or |angle| <= a), read from summary.json and metrics.parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...figures._charts import Series, line_chart
from ...metrics._worst_case import robust_within
from .._registry import register_section
from .._run import read_json
from .._templates import number, render_template, svg_markup
from ._common import metric_digits, metric_help, metric_label, protocol_info

# What the table's numbers are, with labels, next to the peers' (whose sets these are).
PEER_NAMES = {
    "circular": "robust accuracy = AFC robust score, integer circular shifts",
    "crop": "robust accuracy = AFC robust score, crop shifts",
    "fourier": "robust accuracy = AFC robust score, fractional shifts",
    "grid": (
        "robust accuracy: all {views} views right "
        "(at most Engstrom et al.'s grid accuracy, which scores one chosen view)"
    ),
}
TABLE_METRICS = ("clean_accuracy", "robust_accuracy", "worst_of_k_accuracy", "worst_case_accuracy")
CURVE_POINTS = 80


def worst_keys(keys) -> list[str]:
    """The worst-case set keys (`worst@KIND`) among protocol keys, in order."""
    return [k for k in keys if str(k).startswith("worst@")]


def has_worst_case(run_dir: Path) -> bool:
    summary = read_json(Path(run_dir) / "summary.json")
    protocols = summary.get("protocols") if isinstance(summary, dict) else None
    return isinstance(protocols, dict) and bool(worst_keys(protocols))


def peer_name(kind: str, views=None) -> str:
    views = number(views, 0) if views is not None else "the"
    if kind.startswith("random"):
        k = kind[len("random") :]
        return (
            f"worst-of-K accuracy = Engstrom et al. worst-of-{k} accuracy; "
            f"robust accuracy: all {views} views right"
        )
    return PEER_NAMES.get(kind, "").format(views=views)


def table_rows(runs, report) -> tuple[list[str], list[str], list[list]]:
    many = len(runs) > 1
    header = (["run"] if many else []) + ["set", "images", "views / image", "computed / image"]
    header += [metric_label(m) for m in TABLE_METRICS] + ["with labels, the numbers are"]
    titles = [""] * (len(header) - len(TABLE_METRICS) - 1)
    titles += [metric_help(m) for m in TABLE_METRICS] + [""]
    rows = []
    for run in runs:
        protocols = (run.summary or {}).get("protocols") or {}
        metrics = report.metrics(run)
        for key in worst_keys(protocols):
            entry = protocols[key]
            info = protocol_info(run, key)
            kind = info.get("kind") or key.split("@", 1)[1]
            computed = metrics.column(key, "n_views", metrics.images(key))
            mode = "every view" if info.get("exhaustive") else "early exit"
            row = ([run.label] if many else []) + [
                key,
                number(entry.get("n_images"), 0),
                number(info.get("views"), 0),
                f"{number(float(np.mean(computed)) if len(computed) else None, 1)} ({mode})",
            ]
            row += [{"entry": entry.get(m), "digits": metric_digits(m)} for m in TABLE_METRICS]
            rows.append(row + [peer_name(kind, info.get("views"))])
    return header, titles, rows


def failing_curve(runs, report, metric: str, keys_wanted, x_label: str) -> str | None:
    """Fraction of images still robust versus the limit on the first failing transformation."""
    curves = []
    for run in runs:
        metrics = report.metrics(run)
        for key in worst_keys(metrics.keys()):
            if not keys_wanted(run, key):
                continue
            images = metrics.images(key)
            curves.append(
                (
                    key if len(runs) == 1 else f"{run.label} · {key}",
                    metrics.column(key, metric, images),
                    metrics.column(key, "robust_accuracy", images),
                )
            )
    if not curves:
        return None
    largest = max([float(np.nanmax(f)) for _, f, _ in curves if np.isfinite(f).any()] + [1.0])
    limits = np.linspace(0.0, largest * 1.05, CURVE_POINTS)
    series = [
        Series(label, limits.tolist(), robust_within(f, r, limits).tolist(), markers=False)
        for label, f, r in curves
    ]
    return line_chart(
        series,
        width=520,
        height=280,
        x_label=x_label,
        y_label="fraction of images robust",
        y_range=(0.0, 1.0),
        title=f"Images whose answer holds up to the first failing {metric_label(metric)}",
    )


def _rotates(run, key: str) -> bool:
    return "rotation_deg" in protocol_info(run, key)


@register_section("worst_case", "Worst case", order=35, present=has_worst_case)
def worst_case(runs, report):
    header, titles, rows = table_rows(runs, report)
    if not rows:
        return None
    charts = [
        # a rotating set's first failing view is not its smallest shift: no |shift| curve
        failing_curve(
            runs, report, "failing_shift", lambda run, key: not _rotates(run, key), "|shift| r (px)"
        ),
        failing_curve(runs, report, "failing_angle", _rotates, "|angle| a (degrees)"),
    ]
    return render_template(
        "worst_case.html.j2",
        header=header,
        titles=titles,
        rows=rows,
        charts=[svg_markup(c) for c in charts if c],
    )
