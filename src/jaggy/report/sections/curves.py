"""Per protocol: P(c*) versus shift for the chosen images, beside the views themselves."""

from __future__ import annotations

import math

from ...figures._charts import Series, line_chart
from ...figures._palette import mpl_style
from ...figures._sequence import correctness_colours, views_and_curve_svg
from ...results._thumbnails import shown_positions
from .._registry import has_file, register_section
from .._templates import render_template, svg_markup
from ._common import metric_label, protocol_description


def protocol_order(runs, report) -> list[str]:
    """Protocol keys of all runs, in order of first appearance."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in report.protocol_keys(run) if k not in keys]
    return keys


def x_axis(protocol_views) -> tuple[dict[int, float], str, dict[int, str]]:
    """{view: x value}, axis label and {view: tick label} of a protocol's curves."""
    xs, label = protocol_views.x_values()
    views = protocol_views.views
    return (
        {v: float(x) for v, x in zip(views, xs, strict=True)},
        label,
        {v: f"{x:g}" for v, x in zip(views, xs, strict=True)},
    )


def reference_note(run, seq) -> str:
    name = run.class_name(seq.ref_class, short=False)
    source = "the label" if seq.label >= 0 else "top-1 of the first view"
    return f"c* = {name} ({source})"


def point_titles(run, seq, x_of: dict[int, float], x_label: str) -> list[str]:
    return [
        f"{x_label.split(' (')[0]} {x_of.get(int(v), v):g}: top-1 = "
        f"{run.class_name(int(t))} (p = {float(tp):.3f}); P(c*) = {float(p):.3f}"
        for v, t, tp, p in zip(seq.view, seq.top1, seq.top1_prob, seq.p_ref, strict=True)
    ]


CARD_METRICS = ("p_top1_change", "jaggedness", "mac")  # shown per image, from metrics.parquet


def image_metrics(report, run, key: str, index: int) -> list[tuple[str, str]]:
    """(label, value) of the image's metrics under `key`, as metrics.parquet holds them."""
    table = report.metrics(run)
    shown = []
    for name in CARD_METRICS:
        value = table.value(key, index, name)
        if math.isfinite(value):
            shown.append((metric_label(name), f"{value:.3f}"))
    return shown


def run_block(run, report, key: str) -> dict:
    """One run's part of a protocol: the chart of its chosen images and a card per image."""
    protocol_views = report.protocol_views(run)[key]
    details = report.details(run)
    x_of, x_label, tick_of = x_axis(protocol_views)
    chosen = [i for i in report.curve_images(run) if (key, i) in details]
    n_images = len(report.metrics(run).images(key))
    series = []
    for i, index in enumerate(chosen):
        seq = details[(key, index)]
        series.append(
            Series(
                f"{seq.image_id} · c* = {run.class_name(seq.ref_class)}",
                [x_of.get(int(v), math.nan) for v in seq.view],
                seq.p_ref.tolist(),
                colour=mpl_style(i)["color"],
                point_colours=correctness_colours(seq.correct),
                point_titles=point_titles(run, seq, x_of, x_label),
            )
        )
    views = protocol_views.views
    mean = protocol_views.mean_p_by_view()
    series.append(
        Series(
            f"mean over all {n_images} images",
            [x_of[v] for v in views],
            mean.tolist(),
            colour="#444444",
            dash=(5, 3),
            width=2.4,
            markers=False,
        )
    )
    which = (
        f"the {len(chosen)} most unstable images"
        if n_images > len(chosen)
        else f"all {n_images} images"
    )
    chart = line_chart(
        series,
        width=640,
        height=300,
        x_label=x_label,
        y_label="P(c*)",
        y_range=(0.0, 1.0),
        title=f"{key}: P(c*) versus shift, {which}",
        description=f"P(c*) against {x_label} for protocol {key}",
    )
    run_problem = report.view_maker(run).problem  # said once, at the top of the section
    cards = []
    for i, index in enumerate(chosen):
        seq = details[(key, index)]
        positions = shown_positions(len(seq.view), report.limits.thumbnails)
        shown = [int(seq.view[p]) for p in positions]
        pixels = report.thumbnails(run, seq.image_index, seq.image_id, key, shown)
        reason = pixels if isinstance(pixels, str) else None
        titles = point_titles(run, seq, x_of, x_label)
        thumbs = (
            []
            if reason
            else [(p, pixels[j], f"{seq.image_id}, {titles[p]}") for j, p in enumerate(positions)]
        )
        colour = mpl_style(i)["color"]
        figure = views_and_curve_svg(
            thumbs,
            seq.p_ref.tolist(),
            seq.correct.tolist(),
            [tick_of.get(int(v), str(int(v))) for v in seq.view],
            colour=colour,
            point_titles=titles,
            description=f"views of {seq.image_id} under {key} and P(c*) at each",
        )
        cards.append(
            {
                "colour": colour,
                "image_id": seq.image_id,
                "reference": reference_note(run, seq),
                "metrics": image_metrics(report, run, key, index),
                "n_pairs": int(report.metrics(run).value(key, index, "n_pairs")),
                "reason": reason if reason and reason != run_problem else None,
                "svg": svg_markup(figure),
            }
        )
    return {
        "heading": run.label if len(report.runs) > 1 else None,
        "chart": svg_markup(chart),
        "chosen": len(chosen),
        "n_images": n_images,
        "cards": cards,
    }


@register_section("curves", "P(c*) versus shift", order=30, present=has_file("predictions.parquet"))
def curves(runs, report):
    keys = protocol_order(runs, report)
    if not keys:
        return None
    problems = []
    for run in runs:
        problem = report.view_maker(run).problem
        if problem and report.curve_images(run):
            problems.append((run.label, problem))
    for run in runs:  # every thumbnail of the section, made in one parallel pass
        details = report.details(run)
        wanted = []
        for index in report.curve_images(run):
            for key in report.protocol_keys(run):
                seq = details.get((key, index))
                if seq is not None:
                    positions = shown_positions(len(seq.view), report.limits.thumbnails)
                    shown = [int(seq.view[p]) for p in positions]
                    wanted.append((seq.image_index, seq.image_id, key, shown))
        report.make_thumbnails(run, wanted)
    protocols = []
    for key in keys:
        having = [run for run in runs if key in report.protocol_keys(run)]
        protocols.append(
            {
                "key": key,
                "description": protocol_description(having[0], key),
                "blocks": [run_block(run, report, key) for run in having],
            }
        )
    return render_template("curves.html.j2", problems=problems, protocols=protocols)
