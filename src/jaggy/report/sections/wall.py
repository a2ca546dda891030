"""The study's wall: images x views, lit where the top-1 answer is c*, sorted by jaggedness."""

from __future__ import annotations

import numpy as np

from ...figures import WALL_COLOURS, wall_svg
from .._html import esc, note, slug
from .._registry import has_file, register_section
from .curves import protocol_order, x_axis


def _rgb(state: int) -> str:
    r, g, b = WALL_COLOURS[state]
    return f"rgb({r},{g},{b})"


def wall_block(run, report, key: str) -> str:
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
    return (
        f'<figure class="wall-figure" data-rows="{len(images)}" data-columns="{len(views)}">'
        f"<figcaption><strong>{esc(key)}</strong>"
        + (f" · {esc(run.label)}" if len(report.runs) > 1 else "")
        + f" · {esc(caption)} · columns: {esc(x_label)}</figcaption>"
        + svg
        + "</figure>"
    )


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
    parts = [
        note(
            "One row per image, one column per view. A cell is lit where the top-1 answer is c*, "
            "dim where c* is only in the top-5, dark where it is outside the top-5. Rows are "
            "sorted by jaggedness (how often c* enters or leaves the top-5 between neighbouring "
            "views; the number on the right), most jagged first."
        ),
        '<p class="legend-wall">'
        f'<span><span class="swatch" style="background:{_rgb(2)}"></span>top-1 = c*</span>'
        f'<span><span class="swatch" style="background:{_rgb(1)}"></span>c* in top-5</span>'
        f'<span><span class="swatch" style="background:{_rgb(0)}"></span>c* not in top-5</span>'
        "</p>",
    ]
    if capped:
        parts.append(
            note(
                f"Walls show at most {cap} images, spread evenly over the jaggedness ranking so "
                "they span the whole run."
            )
        )
    walls = []
    for key in keys:
        figures = [wall_block(run, report, key) for run in runs if key in report.stats(run)]
        walls.append(
            f'<section class="wall-item" id="wall-{esc(slug(key))}" data-protocol="{esc(key)}">'
            f"{''.join(figures)}</section>"
        )
    parts.append(f'<div class="figure-row">{"".join(walls)}</div>')
    return "".join(parts)
