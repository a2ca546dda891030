"""The headline: every protocol's metrics with 95% CIs, one table per run."""

from __future__ import annotations

from .._registry import has_file, register_section
from .._templates import number, render_template, slug, svg_markup
from ._common import known_metrics, metric_chart, metric_digits, metric_help, metric_label


def summary_metrics(protocols: dict) -> list[str]:
    """Metrics with at least one value in these summary entries, in registry order (then any
    unknown ones in file order)."""
    names = known_metrics()
    for entry in protocols.values():
        for name, value in entry.items():
            if isinstance(value, dict) and "value" in value and name not in names:
                names.append(name)
    return [
        m
        for m in names
        if any(
            isinstance(e.get(m), dict) and e[m].get("value") is not None for e in protocols.values()
        )
    ]


def extremes(protocols: dict) -> dict | None:
    """The least and the most stable protocol by P(top-1 change) ({"worst", "best"}: (key,
    entry)), or None with fewer than two values."""
    values = {
        key: entry["p_top1_change"]
        for key, entry in protocols.items()
        if isinstance(entry.get("p_top1_change"), dict)
        and entry["p_top1_change"].get("value") is not None
    }
    if len(values) < 2:
        return None
    worst = max(values, key=lambda k: values[k]["value"])
    best = min(values, key=lambda k: values[k]["value"])
    return {"worst": (worst, values[worst]), "best": (best, values[best])}


def run_table(run, protocols: dict) -> dict:
    metrics = summary_metrics(protocols)
    rows = []
    for key, entry in protocols.items():
        name = {"href": f"#curves-{slug(key)}", "text": key} if run.has_predictions else key
        rows.append(
            [name, number(entry.get("n_images"), 0), number(entry.get("n_pairs"), 0)]
            + [{"entry": entry.get(m), "digits": metric_digits(m)} for m in metrics]
        )
    chart = None
    if "p_top1_change" in metrics and len(protocols) > 1:
        keys = list(protocols)
        chart = metric_chart(
            [(run.label, keys, [protocols[k].get("p_top1_change") for k in keys])],
            "p_top1_change",
            title="P(top-1 change) between views one step apart, per protocol (95% CI)",
        )
    summary = run.summary or {}
    return {
        "run": run,
        "n_images": summary.get("n_images", "?"),
        "n_skipped": summary.get("n_skipped", 0),
        "model": summary.get("model", run.model_spec),
        "header": ["protocol", "images", "pairs"] + [metric_label(m) for m in metrics],
        "titles": ["", "images measured", "consecutive view pairs"]
        + [metric_help(m) for m in metrics],
        "rows": rows,
        "extremes": extremes(protocols),
        "chart": svg_markup(chart),
    }


@register_section("headline", "Headline", order=10, present=has_file("summary.json"))
def headline(runs, report):
    tables = []
    for run in runs:
        protocols = (run.summary or {}).get("protocols") or {}
        if isinstance(protocols, dict) and protocols:
            tables.append(run_table(run, protocols))
    if not tables:
        return None
    return render_template("headline.html.j2", tables=tables)
