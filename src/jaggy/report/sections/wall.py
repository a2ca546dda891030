"""The study's wall: images x views, lit where the top-1 answer is c*, sorted by jaggedness."""

from __future__ import annotations

import numpy as np

from ...figures._palette import WALL_COLOURS
from ...figures._wall import wall_svg
from .._registry import has_file, register_section
from .._templates import number, render_template, svg_markup
from .curves import protocol_order, x_axis


def wall_block(run, report, key: str) -> dict:
    protocol_views = report.protocol_views(run)[key]
    metrics = report.metrics(run)
    details = report.details(run)
    images = [int(i) for i in report.wall_images(run, key) if (key, int(i)) in details]
    views = protocol_views.views
    column = {v: c for c, v in enumerate(views)}
    states = np.full((len(images), len(views)), -1, dtype=np.int64)
    labels, notes, titles = [], [], []
    for r, index in enumerate(images):
        seq = details[(key, index)]
        for v, top1_ok, inside in zip(seq.view, seq.correct, seq.in_top5, strict=True):
            states[r, column[int(v)]] = 2 if top1_ok else (1 if inside else 0)
        jaggedness = metrics.value(key, index, "jaggedness")
        changes = metrics.value(key, index, "p_top1_change")
        labels.append(seq.image_id)
        notes.append(number(jaggedness, 2))
        titles.append(
            f"{seq.image_id}: c* = {run.class_name(seq.ref_class, short=False)}; "
            f"jaggedness {number(jaggedness)}; P(top-1 change) {number(changes)}"
        )
    _, x_label, tick_of = x_axis(protocol_views)
    n_total = len(metrics.images(key))
    svg = wall_svg(
        states,
        labels,
        [tick_of[v] for v in views],
        row_notes=notes,
        row_titles=titles,
        max_width=420,
        max_height=520,
        description=f"wall of {len(images)} images x {len(views)} views for {key}",
    )
    caption = f"{len(images)} of {n_total} images" if n_total > len(images) else f"{n_total} images"
    return {
        "key": key,
        "run_label": run.label if len(report.runs) > 1 else None,
        "rows": len(images),
        "columns": len(views),
        "caption": caption,
        "x_label": x_label,
        "svg": svg_markup(svg),
    }


@register_section(
    "wall", "The wall: images × shifts", order=40, present=has_file("predictions.parquet")
)
def wall(runs, report) -> str | None:
    keys = protocol_order(runs, report)
    if not keys:
        return None
    cap = report.limits.wall_images
    capped = any(
        len(report.metrics(run).images(k)) > cap for run in runs for k in report.protocol_keys(run)
    )
    walls = [
        {
            "key": key,
            "figures": [
                wall_block(run, report, key) for run in runs if key in report.protocol_keys(run)
            ],
        }
        for key in keys
    ]
    legend = [
        (f"rgb{WALL_COLOURS[state]}".replace(" ", ""), text)
        for state, text in ((2, "top-1 = c*"), (1, "c* in top-5"), (0, "c* not in top-5"))
    ]
    return render_template("wall.html.j2", walls=walls, legend=legend, cap=cap if capped else None)
