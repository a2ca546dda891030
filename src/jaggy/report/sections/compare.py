"""`jaggy compare` output: a model against its remedies, every metric with the winner marked,
and what each variant costs (ms per image, parameters)."""

from __future__ import annotations

from .._registry import has_file, register_section
from .._run import read_json
from .._templates import number, render_template, svg_markup
from ._common import (
    known_metrics,
    metric_chart,
    metric_help,
    metric_label,
    value_of,
    winners,
)
from .comparison import marked_cells

COSTS = ("ms_per_image", "ms_ratio_to_base", "params")


def compare_rows(data) -> list[dict]:
    """Flatten compare.json into rows {variant, protocol, metrics: {name: entry}, costs}.

    Accepts a list of rows or {"rows"|"variants": [...]}; a row's metrics may sit at its top
    level, under "metrics", or per protocol under "protocols" ({key: {metric: entry}})."""
    if isinstance(data, dict):
        data = data.get("rows", data.get("variants", []))
    rows = []
    for row in data if isinstance(data, list) else []:
        if not isinstance(row, dict) or "variant" not in row:
            continue
        costs = {k: row.get(k) for k in COSTS if k in row}
        if isinstance(row.get("protocols"), dict):
            for key, entry in row["protocols"].items():
                if isinstance(entry, dict):
                    rows.append(
                        {
                            "variant": row["variant"],
                            "run": row.get("run"),
                            "protocol": key,
                            "metrics": _metrics(entry),
                            "costs": costs,
                        }
                    )
            continue
        source = row.get("metrics") if isinstance(row.get("metrics"), dict) else row
        rows.append(
            {
                "variant": row["variant"],
                "run": row.get("run"),
                "protocol": row.get("protocol"),
                "metrics": _metrics(source),
                "costs": costs,
            }
        )
    return rows


def _metrics(source: dict) -> dict:
    skip = {"variant", "run", "protocol", "protocols", "metrics", *COSTS}
    return {
        k: v for k, v in source.items() if k not in skip and (isinstance(v, dict) and "value" in v)
    }


@register_section("compare", "Remedies: jaggy compare", order=70, present=has_file("compare.json"))
def compare(runs, report):
    blocks = []
    for run in runs:
        rows = compare_rows(read_json(run.path / "compare.json"))
        if rows:
            blocks.append(run_block(run, rows))
    if not blocks:
        return None
    return render_template("compare.html.j2", blocks=blocks)


def run_block(run, rows: list[dict]) -> dict:
    """One compare.json: a table per protocol (variants x metrics and costs) and a chart."""
    folders = list(dict.fromkeys(str(r["run"]) for r in rows if r.get("run")))
    tables = []
    order = known_metrics()
    for key in dict.fromkeys(r["protocol"] for r in rows):
        group = [r for r in rows if r["protocol"] == key]
        names = [m for m in order if any(m in r["metrics"] for r in group)]
        names += [m for r in group for m in r["metrics"] if m not in names]
        names = [m for m in names if any(value_of(r["metrics"].get(m)) is not None for r in group)]
        costs = [c for c in COSTS if any(c in r["costs"] for r in group)]
        cells = [[str(r["variant"])] for r in group]
        for m in names:
            column = marked_cells([r["metrics"].get(m) for r in group], m)
            for row, cell in zip(cells, column, strict=True):
                row.append(cell)
        for c in costs:
            values = [value_of(r["costs"].get(c)) for r in group]
            win = winners(values, False) if c == "ms_per_image" else set()
            for i, v in enumerate(values):
                text = (f"{int(v):,}" if v is not None else "–") if c == "params" else number(v, 2)
                cells[i].append({"text": text, "win": i in win})
        tables.append(
            {
                "key": key,
                "header": ["variant"]
                + [metric_label(m) for m in names]
                + [metric_label(c) for c in costs],
                "titles": [""] + [metric_help(m) for m in names] + ["" for _ in costs],
                "rows": cells,
            }
        )
    chart = None
    if any("p_top1_change" in r["metrics"] for r in rows):
        groups = []
        for variant in dict.fromkeys(r["variant"] for r in rows):
            mine = [r for r in rows if r["variant"] == variant and "p_top1_change" in r["metrics"]]
            groups.append(
                (
                    str(variant),
                    [str(r["protocol"] or "all") for r in mine],
                    [r["metrics"]["p_top1_change"] for r in mine],
                )
            )
        chart = metric_chart(groups, "p_top1_change", title="P(top-1 change) per variant (95% CI)")
    return {"run": run, "folders": folders, "tables": tables, "chart": svg_markup(chart)}
