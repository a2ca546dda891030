"""Per protocol: P(c*) versus shift for the chosen images, beside the views themselves."""

from __future__ import annotations

import math

import numpy as np

from ...figures import Series, correctness_colours, line_chart, series_style, views_and_curve_svg
from .._html import esc, note, slug
from .._registry import has_file, register_section
from ._common import protocol_description


def protocol_order(runs, report) -> list[str]:
    """Protocol keys of all runs, in order of first appearance."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in report.protocol_keys(run) if k not in keys]
    return keys


def x_axis(stats) -> tuple[dict[int, float], str, dict[int, str]]:
    """{view: x value}, axis label and {view: tick label} of a protocol's curves."""
    xs, label = stats.x_values()
    views = sorted(stats.view_params)
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
        for v, t, tp, p in zip(seq.view, seq.top1, seq.top1_prob, seq.p_label, strict=True)
    ]


def _thumb_positions(n: int, limit: int) -> list[int]:
    if limit <= 0:
        return []
    if n <= limit:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, limit)})


def run_block(run, report, key: str) -> str:
    stats = report.stats(run)[key]
    details = report.details(run)
    x_of, x_label, tick_of = x_axis(stats)
    chosen = [i for i in report.curve_images(run) if (key, i) in details]
    n_images = len(stats.image_indices())
    series = []
    for i, index in enumerate(chosen):
        seq = details[(key, index)]
        colour, dash = series_style(i)
        series.append(
            Series(
                f"{seq.image_id} · c* = {run.class_name(seq.ref_class)}",
                [x_of.get(int(v), math.nan) for v in seq.view],
                seq.p_label.tolist(),
                colour=colour,
                dash=dash,
                point_colours=correctness_colours(seq.correct),
                point_titles=point_titles(run, seq, x_of, x_label),
            )
        )
    views = sorted(stats.view_params)
    mean = stats.mean_p_by_view()
    series.append(
        Series(
            f"mean over all {n_images} images",
            [x_of[v] for v in views],
            [float(mean[v]) for v in views],
            colour="#444444",
            dash="5 3",
            width=2.4,
            markers=False,
        )
    )
    chart = '<div class="overview">' + (
        line_chart(
            series,
            width=640,
            height=300,
            x_label=x_label,
            y_label="P(c*)",
            y_range=(0.0, 1.0),
            title=f"{key}: P(c*) versus shift, "
            + (
                f"the {len(chosen)} most unstable images"
                if n_images > len(chosen)
                else f"all {n_images} images"
            ),
            description=f"P(c*) against {x_label} for protocol {key}",
        )
    )
    if n_images > len(chosen):
        chart += note(
            f"Showing the {len(chosen)} images (of {n_images}) whose answers change most "
            f"(mean P(top-1 change) + jaggedness over protocols); the dashed line is the "
            "mean over all images."
        )
    chart += "</div>"
    run_problem = report.views(run).problem  # said once, at the top of the section
    cards = []
    for i, index in enumerate(chosen):
        seq = details[(key, index)]
        positions = _thumb_positions(len(seq.view), report.limits.thumbnails)
        uris = report.thumbnails(run, seq.image_id, key, [int(seq.view[p]) for p in positions])
        reason = uris if isinstance(uris, str) else None
        titles = point_titles(run, seq, x_of, x_label)
        thumbs = [
            (p, None if reason else uris[j], f"{seq.image_id}, {titles[p]}")
            for j, p in enumerate(positions)
        ]
        colour, _ = series_style(i)
        changes = int(np.count_nonzero(seq.top1[1:] != seq.top1[:-1]))
        jagged = int(np.count_nonzero(seq.in_top5[1:] != seq.in_top5[:-1]))
        figure = views_and_curve_svg(
            thumbs if not reason else [],
            seq.p_label.tolist(),
            seq.correct.tolist(),
            [tick_of.get(int(v), str(int(v))) for v in seq.view],
            colour=colour,
            point_titles=titles,
            description=f"views of {seq.image_id} under {key} and P(c*) at each",
        )
        cards.append(
            '<div class="image-card">'
            f'<div class="caption"><span class="swatch" style="background:{colour}"></span>'
            f"<strong>{esc(seq.image_id)}</strong> · {esc(reference_note(run, seq))}<br>"
            f"top-1 changed in {changes} of {len(seq.view) - 1} steps; c* entered or left the "
            f"top-5 {jagged} times; top-1 = c* in {int(seq.correct.sum())} of {len(seq.view)} "
            "views (green frame/point: top-1 is c*, red: it is not)</div>"
            + (note(f"Views not shown: {reason}.") if reason and reason != run_problem else "")
            + figure
            + "</div>"
        )
    return f'<div class="image-grid">{chart}{"".join(cards)}</div>'


@register_section("curves", "P(c*) versus shift", order=30, present=has_file("predictions.parquet"))
def curves(runs, report) -> str | None:
    keys = protocol_order(runs, report)
    if not keys:
        return None
    parts = [
        note(
            "For each protocol: the probability of the reference class c* at every view, for "
            "the images whose answer changes most, with the views the model saw (re-created "
            "from the image files; frames green where top-1 is c*). c* is the label when known, "
            "else the top-1 class of the sequence's first view, so it can differ between "
            "protocols. Hover a point for the top-1 class."
        )
    ]
    for run in runs:
        problem = report.views(run).problem
        if problem and report.curve_images(run):
            parts.append(note(f"{run.label}: views cannot be shown: {problem}."))
    for run in runs:
        # Make the thumbnails image by image, so each image file is decoded once.
        details = report.details(run)
        for index in report.curve_images(run):
            for key in report.protocol_keys(run):
                seq = details.get((key, index))
                if seq is not None:
                    positions = _thumb_positions(len(seq.view), report.limits.thumbnails)
                    report.thumbnails(run, seq.image_id, key, [int(seq.view[p]) for p in positions])
    for key in keys:
        blocks = []
        for run in runs:
            if key not in report.stats(run):
                continue
            heading = f"<h4>{esc(run.label)}</h4>" if len(runs) > 1 else ""
            blocks.append(heading + run_block(run, report, key))
        description = protocol_description(next(r for r in runs if key in report.stats(r)), key)
        parts.append(
            f'<section class="protocol" id="curves-{esc(slug(key))}" '
            f'data-protocol="{esc(key)}"><h3>{esc(key)}</h3>'
            + (f"<p>{esc(description)}.</p>" if description else "")
            + "".join(blocks)
            + "</section>"
        )
    return "".join(parts)
