"""The study's wall: images x views, lit where the top-1 answer is c*, sorted by jaggedness."""

from __future__ import annotations

import numpy as np

from ...figures import WALL_COLOURS, wall_svg
from .._registry import has_file, register_section
from .._templates import render_template, svg_markup
from .curves import protocol_order, x_axis


def wall_block(run, report, key: str) -> dict:
    stats = report.stats(run)[key]
    details = report.details(run)
    images = [int(i) for i in report.wall_images(run, key) if (key, int(i)) in details]
    views = sorted(stats.view_params)
    column = {v: c for c, v in enumerate(views)}
    states = np.full((len(images), len(views)), -1, dtype=np.int64)
    labels, notes, titles = [], [], []
    jag = stats.rate("jagged")
    for r, index in enumerate(images):
        seq = details[(key, index)]
        for v, top1_ok, inside in zip(seq.view, seq.correct, seq.in_top5, strict=True):
            states[r, column[int(v)]] = 2 if top1_ok else (1 if inside else 0)
        labels.append(seq.image_id)
        notes.append(f"{jag[index]:.2f}")
        titles.append(
            f"{seq.image_id}: c* = {run.class_name(seq.ref_class, short=False)}; "
            f"jaggedness {jag[index]:.3f}; top-1 = c* in {int(seq.correct.sum())} of "
            f"{len(seq.view)} views"
        )
    _, x_label, tick_of = x_axis(stats)
    n_total = len(stats.image_indices())
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
        len(report.stats(run)[k].image_indices()) > cap
        for run in runs
        for k in report.protocol_keys(run)
    )
    walls = [
        {
            "key": key,
            "figures": [wall_block(run, report, key) for run in runs if key in report.stats(run)],
        }
        for key in keys
    ]
    legend = [
        (f"rgb{WALL_COLOURS[state]}".replace(" ", ""), text)
        for state, text in ((2, "top-1 = c*"), (1, "c* in top-5"), (0, "c* not in top-5"))
    ]
    return render_template("wall.html.j2", walls=walls, legend=legend, cap=cap if capped else None)
