"""Runs side by side (models, remedies): per protocol, every metric with the winner marked."""

from __future__ import annotations

from .._html import esc, metric_digits, note, table, value_ci
from .._registry import has_file, register_section
from ._common import (
    ci_of,
    clear_win,
    higher_is_better,
    metric_chart,
    metric_help,
    metric_label,
    value_of,
    winners,
)
from .headline import summary_metrics


@register_section(
    "comparison", "Comparison across runs", order=20, present=has_file("summary.json")
)
def comparison(runs, report) -> str | None:
    runs = [r for r in runs if isinstance((r.summary or {}).get("protocols"), dict)]
    if len(runs) < 2:
        return None
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.summary["protocols"] if k not in keys]
    parts = [
        note(
            "★ marks the best value of each metric among the runs that measured this protocol "
            "(ties share it); “clear” means its 95% CI overlaps no other run's. Runs compared "
            "on different images are not directly comparable."
        )
    ]
    shown = 0
    for key in keys:
        having = [r for r in runs if key in r.summary["protocols"]]
        if len(having) < 2:
            continue
        shown += 1
        entries = [r.summary["protocols"][key] for r in having]
        metrics = summary_metrics({str(i): e for i, e in enumerate(entries)})
        cells = [[esc(r.label)] for r in having]
        for m in metrics:
            values = [value_of(e.get(m)) for e in entries]
            win = winners(values, higher_is_better(m))
            clear = clear_win([ci_of(e.get(m)) for e in entries], win)
            for i, e in enumerate(entries):
                text = value_ci(e.get(m), metric_digits(m))
                if i in win:
                    text = f'<span class="win">{text}{" · clear" if clear else ""}</span>'
                cells[i].append(text)
        header = ["run"] + [metric_label(m) for m in metrics]
        titles = [""] + [metric_help(m) for m in metrics]
        parts.append(f"<h3>{esc(key)}</h3>")
        parts.append(table(header, cells, header_titles=titles))
    if not shown:
        return None
    groups = []
    for run in runs:
        ks = [k for k in keys if k in run.summary["protocols"]]
        groups.append(
            (run.label, ks, [run.summary["protocols"][k].get("p_top1_change") for k in ks])
        )
    parts.append(
        metric_chart(groups, "p_top1_change", title="P(top-1 change) per protocol and run (95% CI)")
    )
    return "".join(parts)
