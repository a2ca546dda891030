"""Runs side by side (models, remedies): per protocol, every metric with the winner marked."""

from __future__ import annotations

from .._registry import has_file, register_section
from .._templates import render_template, svg_markup
from ._common import (
    ci_of,
    clear_win,
    higher_is_better,
    metric_chart,
    metric_digits,
    metric_help,
    metric_label,
    value_of,
    winners,
)
from .headline import summary_metrics


def marked_cells(entries: list, metric: str) -> list[dict]:
    """Table cells of one metric across rows, the best marked (and "clear" when its CI
    overlaps no other)."""
    win = winners([value_of(e) for e in entries], higher_is_better(metric))
    clear = clear_win([ci_of(e) for e in entries], win)
    return [
        {"entry": e, "digits": metric_digits(metric), "win": i in win, "clear": clear}
        for i, e in enumerate(entries)
    ]


@register_section(
    "comparison", "Comparison across runs", order=20, present=has_file("summary.json")
)
def comparison(runs, report):
    runs = [r for r in runs if isinstance((r.summary or {}).get("protocols"), dict)]
    if len(runs) < 2:
        return None
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.summary["protocols"] if k not in keys]
    tables = []
    for key in keys:
        having = [r for r in runs if key in r.summary["protocols"]]
        if len(having) < 2:
            continue
        entries = [r.summary["protocols"][key] for r in having]
        metrics = summary_metrics({str(i): e for i, e in enumerate(entries)})
        rows = [[r.label] for r in having]
        for m in metrics:
            for row, c in zip(rows, marked_cells([e.get(m) for e in entries], m), strict=True):
                row.append(c)
        tables.append(
            {
                "key": key,
                "header": ["run"] + [metric_label(m) for m in metrics],
                "titles": [""] + [metric_help(m) for m in metrics],
                "rows": rows,
            }
        )
    if not tables:
        return None
    groups = []
    for run in runs:
        ks = [k for k in keys if k in run.summary["protocols"]]
        groups.append(
            (run.label, ks, [run.summary["protocols"][k].get("p_top1_change") for k in ks])
        )
    chart = metric_chart(
        groups, "p_top1_change", title="P(top-1 change) per protocol and run (95% CI)"
    )
    return render_template("comparison.html.j2", tables=tables, chart=svg_markup(chart))
