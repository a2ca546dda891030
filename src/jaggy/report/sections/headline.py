"""The headline: every protocol's metrics with 95% CIs, one table per run."""

from __future__ import annotations

from .._html import esc, metric_digits, note, number, slug, table, value_ci
from .._registry import has_file, register_section
from ._common import known_metrics, metric_chart, metric_help, metric_label, run_heading


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


@register_section("headline", "Headline", order=10, present=has_file("summary.json"))
def headline(runs, report) -> str | None:
    parts = [
        note(
            "Each metric is the mean over images of a per-image value; brackets give the "
            "bootstrap 95% CI over images. Hover a column title for its definition."
        )
    ]
    for run in runs:
        protocols = (run.summary or {}).get("protocols") or {}
        if not isinstance(protocols, dict) or not protocols:
            continue
        metrics = summary_metrics(protocols)
        header = ["protocol", "images", "pairs"] + [metric_label(m) for m in metrics]
        titles = ["", "images measured", "consecutive view pairs"] + [
            metric_help(m) for m in metrics
        ]
        rows = []
        for key, entry in protocols.items():
            rows.append(
                [
                    f'<a href="#curves-{esc(slug(key))}">{esc(key)}</a>'
                    if run.has_predictions
                    else esc(key),
                    number(entry.get("n_images"), 0),
                    number(entry.get("n_pairs"), 0),
                ]
                + [value_ci(entry.get(m), metric_digits(m)) for m in metrics]
            )
        summary = run.summary or {}
        parts.append(run_heading(run))
        parts.append(
            note(
                f"{summary.get('n_images', '?')} images, {summary.get('n_skipped', 0)} skipped; "
                f"model {summary.get('model', run.model_spec)}"
            )
        )
        parts.append(table(header, rows, header_titles=titles))
        parts.append(extremes(protocols))
        if "p_top1_change" in metrics and len(protocols) > 1:
            keys = list(protocols)
            parts.append(
                metric_chart(
                    [(run.label, keys, [protocols[k].get("p_top1_change") for k in keys])],
                    "p_top1_change",
                    title="P(top-1 change) between views one step apart, per protocol (95% CI)",
                )
            )
    return "".join(parts) if len(parts) > 1 else None


def extremes(protocols: dict) -> str:
    """One sentence naming the least and the most stable protocol by P(top-1 change)."""
    values = {
        key: entry["p_top1_change"]
        for key, entry in protocols.items()
        if isinstance(entry.get("p_top1_change"), dict)
        and entry["p_top1_change"].get("value") is not None
    }
    if len(values) < 2:
        return ""
    worst = max(values, key=lambda k: values[k]["value"])
    best = min(values, key=lambda k: values[k]["value"])
    if values[worst]["value"] == values[best]["value"]:
        return f"<p>P(top-1 change) was {value_ci(values[worst])} under every protocol.</p>"
    return (
        f"<p>The top-1 answer changed most often under <strong>{esc(worst)}</strong> "
        f"({value_ci(values[worst])} of one-step pairs) and least often under "
        f"<strong>{esc(best)}</strong> ({value_ci(values[best])}).</p>"
    )
