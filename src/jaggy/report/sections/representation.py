"""Representation change (`--measure features`): how far 1-px changes move the features,
beside how often they move the answer.

Per run that measured features: what was compared (layer, feature width, distance, the
threshold τ), one row per protocol key with the class-level P(top-1 change) (when the run
measured logits) and its top-1 fooling rate next to the mean cosine distance, the mean relative L2 change, the
representation change rate (pairs with cosine distance > τ) and the fooling rate (images with
some pair beyond τ); a chart of the two rates; and the images whose features move most. All
numbers come from summary.json and metrics.parquet.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...errors import JaggyError
from .._registry import register_section
from .._run import read_json
from .._templates import number, render_template, svg_markup
from ._common import metric_chart, metric_digits, metric_help, metric_label

CLASS_METRIC = "p_top1_change"
CLASS_METRICS = (CLASS_METRIC, "top1_fooling_rate")  # the answer's counterparts
FEATURE_METRICS = (
    "feature_cos_distance",
    "feature_rel_l2",
    "representation_change_rate",
    "fooling_rate",
)
MOST_MOVED = 5  # images listed per run


def has_representation(run_dir: Path) -> bool:
    summary = read_json(Path(run_dir) / "summary.json")
    return isinstance(summary, dict) and isinstance(summary.get("representation"), dict)


def _value(entry) -> float | None:
    if isinstance(entry, dict) and isinstance(entry.get("value"), int | float):
        return float(entry["value"])
    return None


def _described(record: dict) -> list[tuple[str, object]]:
    layer = record.get("layer")
    where = "penultimate layer (input of the classifier)" if layer == "penultimate" else layer
    if record.get("headless") and layer == "penultimate":
        where = "the model's output (a model without a classifier head)"
    return [
        ("features of", where),
        ("feature width", record.get("feature_dim")),
        ("distance", "cosine distance 1 − cos(f_a, f_b); relative L2 |f_b − f_a| / |f_a|"),
        ("threshold τ", record.get("threshold")),
        ("vectors saved", "features.npy" if record.get("saved") else "no"),
    ]


def _most_moved(run, keys: list[str], shown: list[str]) -> list[list]:
    """The images whose features move most (mean cosine distance), over the run's keys."""
    from ...results import read_metrics

    try:
        table = read_metrics(run.path)
    except JaggyError:
        return []
    if "feature_cos_distance" not in table.column_names:
        return []
    columns = {n: table.column(n).to_numpy(zero_copy_only=False) for n in table.column_names}
    rows = []
    for i in np.argsort(-np.nan_to_num(columns["feature_cos_distance"], nan=-1.0)):
        if len(rows) >= MOST_MOVED or not math.isfinite(columns["feature_cos_distance"][i]):
            break
        if columns["protocol"][i] not in keys:
            continue
        rows.append(
            [str(columns["image_id"][i]), str(columns["protocol"][i])]
            + [number(columns[m][i], metric_digits(m)) if m in columns else "–" for m in shown]
        )
    return rows


def run_block(run) -> dict:
    summary = run.summary
    protocols = summary.get("protocols") or {}
    keys = [k for k in protocols if _value(protocols[k].get("feature_cos_distance")) is not None]
    with_class = any(_value(protocols[k].get(CLASS_METRIC)) is not None for k in keys)
    shown = (list(CLASS_METRICS) if with_class else []) + list(FEATURE_METRICS)
    rows = [
        [key, number(protocols[key].get("n_images"), 0), number(protocols[key].get("n_pairs"), 0)]
        + [{"entry": protocols[key].get(m), "digits": metric_digits(m)} for m in shown]
        for key in keys
    ]
    groups = [
        (metric_label(m), keys, [protocols[k].get(m) for k in keys])
        for m in ([CLASS_METRIC] if with_class else []) + ["representation_change_rate"]
    ]
    chart = None
    if keys:
        chart = metric_chart(
            groups,
            "representation_change_rate",
            title="Fraction of view pairs whose answer (top-1) or representation "
            "(cosine distance > τ) changes, per protocol (95% CI)",
            y_label="fraction of pairs",
        )
    record = summary["representation"]
    return {
        "run": run,
        "about": _described(record),
        "header": ["protocol", "images", "pairs"] + [metric_label(m) for m in shown],
        "titles": ["", "images measured", "view pairs compared"] + [metric_help(m) for m in shown],
        "rows": rows,
        "chart": svg_markup(chart),
        "threshold": record.get("threshold"),
        "moved_header": ["image", "protocol"] + [metric_label(m) for m in shown],
        "moved": _most_moved(run, keys, shown),
    }


@register_section("representation", "Representation change", order=15, present=has_representation)
def representation(runs, report):
    blocks = [run_block(run) for run in runs if run.summary]
    if not blocks:
        return None
    return render_template("representation.html.j2", blocks=blocks)
