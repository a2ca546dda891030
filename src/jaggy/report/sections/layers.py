"""`jaggy layers` output: where invariance breaks, layer by layer (stride map, equivariance
error per shift, aliasing energy), from layers.json and the folder's PNG figures."""

from __future__ import annotations

import base64
import math

from ...figures import Series, line_chart
from .._html import esc, key_values, note, number, table
from .._registry import has_file, register_section
from .._run import read_json
from ._common import finite

MAX_PNGS = 8
MAX_PNG_BYTES = 3_000_000
MAX_TABLE_LAYERS = 400
MAX_SHIFT_CURVES = 8


def error_by_shift(value, shifts: list | None = None) -> list[tuple[float, float]]:
    """(shift, error) pairs from the forms layers.json may use: a list (index = shift, or
    aligned with the file's `shifts`), a {shift: error} mapping, a list of {"shift", "error"}
    objects, or one number (shift unknown: NaN)."""
    pairs: list[tuple[float, float]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            s, e = finite(k), finite(v)
            if s is not None and e is not None:
                pairs.append((s, e))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, dict):
                s = finite(v.get("shift"))
                e = finite(v.get("error", v.get("value")))
            else:
                s = finite(shifts[i]) if shifts and i < len(shifts) else float(i)
                e = finite(v)
            if s is not None and e is not None:
                pairs.append((s, e))
    else:
        e = finite(value)
        if e is not None:
            pairs.append((math.nan, e))
    return sorted(pairs, key=lambda p: (math.isnan(p[0]), p[0]))


def mean_error(pairs: list[tuple[float, float]]) -> float | None:
    """Mean error over non-zero shifts (shift 0 is the identity)."""
    values = [e for s, e in pairs if not (s == 0)]
    return sum(values) / len(values) if values else None


def _shape(value) -> str:
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value)
    return "" if value is None else str(value)


def folder_pngs(run) -> str:
    """The figures `jaggy layers` left in the folder, embedded (largest files skipped)."""
    figures = []
    paths = sorted(run.path.glob("*.png"))
    if not run.has_predictions:  # an audit's figures/ holds shift curves, drawn elsewhere
        paths += sorted((run.path / "figures").glob("*.png"))
    for path in paths[:MAX_PNGS]:
        try:
            if path.stat().st_size > MAX_PNG_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if not data.startswith(b"\x89PNG"):
            continue
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        figures.append(
            f'<figure class="png"><img src="{uri}" alt="{esc(path.name)}" '
            f'style="max-width:640px;width:100%"><figcaption>{esc(path.name)}</figcaption></figure>'
        )
    return f'<div class="figure-row">{"".join(figures)}</div>' if figures else ""


@register_section(
    "layers", "Layers: where invariance breaks", order=60, present=has_file("layers.json")
)
def layers(runs, report) -> str | None:
    parts = [
        note(
            "A representation after layers of total stride r can follow an input shift exactly "
            "only when the shift is a multiple of r; elsewhere it must be shiftable (Azulay & "
            "Weiss 2019, after Simoncelli et al. 1992). Equivariance error: normalised "
            "difference between the features of the shifted input and the shifted features. "
            "Aliasing energy: the fraction of the input's spectral power above the Nyquist "
            "frequency of the layer's output grid."
        )
    ]
    for run in runs:
        data = read_json(run.path / "layers.json")
        if not isinstance(data, dict):
            continue
        layers_ = [x for x in data.get("layers") or [] if isinstance(x, dict)]
        shifts = data.get("shifts") if isinstance(data.get("shifts"), list) else None
        parts.append(
            f'<h3>{esc(data.get("model") or run.label)} <span class="run-tag">{esc(run.path)}</span></h3>'
        )
        scalars = [
            (k.replace("_", " "), v)
            for k, v in data.items()
            if k != "layers" and isinstance(v, (str, int, float, bool))
        ]
        parts.append(key_values(scalars))
        errors = [error_by_shift(x.get("equivariance_error"), shifts) for x in layers_]
        means = [mean_error(e) for e in errors]
        alias = [finite(x.get("aliasing_energy")) for x in layers_]
        strided = [i for i, x in enumerate(layers_) if (finite(x.get("stride")) or 1) > 1]
        charts = []
        if any(m is not None for m in means):
            xs = list(range(len(layers_)))
            series = [
                Series(
                    "mean error over shifts ≠ 0",
                    xs,
                    [m if m is not None else math.nan for m in means],
                    point_titles=[
                        f"{x.get('name')}: {number(m)}" for x, m in zip(layers_, means, strict=True)
                    ],
                )
            ]
            if strided:
                series.append(
                    Series(
                        "subsampling layers",
                        strided,
                        [means[i] if means[i] is not None else math.nan for i in strided],
                        width=0.0,
                        colour="#d62728",
                        point_titles=[
                            f"{layers_[i].get('name')} (stride {layers_[i].get('stride')})"
                            for i in strided
                        ],
                    )
                )
            charts.append(
                line_chart(
                    series,
                    width=560,
                    x_label="layer (depth order)",
                    y_label="equivariance error",
                    title="equivariance error versus depth",
                )
            )
        curve_layers = (strided + [len(layers_) - 1])[:MAX_SHIFT_CURVES] if layers_ else []
        shift_series = []
        for i in dict.fromkeys(curve_layers):
            pts = [(s, e) for s, e in errors[i] if not math.isnan(s)]
            if len(pts) >= 2:
                stride = layers_[i].get("cumulative_stride")
                shift_series.append(
                    Series(
                        f"{layers_[i].get('name')} (r = {stride})",
                        [s for s, _ in pts],
                        [e for _, e in pts],
                    )
                )
        if shift_series:
            charts.append(
                line_chart(
                    shift_series,
                    width=560,
                    x_label="input shift (px)",
                    y_label="equivariance error",
                    title="error versus shift: zero at multiples of the cumulative stride r",
                )
            )
        alias_points = [(i, a) for i, a in enumerate(alias) if a is not None]
        if alias_points:
            charts.append(
                line_chart(
                    [
                        Series(
                            "aliasing energy",
                            [i for i, _ in alias_points],
                            [a for _, a in alias_points],
                            point_titles=[
                                f"{layers_[i].get('name')}: {number(a)}" for i, a in alias_points
                            ],
                        )
                    ],
                    width=560,
                    x_label="layer (depth order)",
                    y_label="fraction of power",
                    title="aliasing energy at the inputs of subsampling layers",
                    legend=False,
                )
            )
        if charts:
            parts.append(f'<div class="figure-row">{"".join(charts)}</div>')
        rows = []
        for i, x in enumerate(layers_[:MAX_TABLE_LAYERS]):
            rows.append(
                [
                    str(i),
                    esc(x.get("name")),
                    esc(x.get("kind")),
                    esc(x.get("stride", "")),
                    esc(x.get("cumulative_stride", "")),
                    esc(_shape(x.get("out_shape"))),
                    number(means[i], 4),
                    number(alias[i], 4),
                ]
            )
        if rows:
            parts.append(
                "<details><summary>All layers</summary>"
                + table(
                    [
                        "#",
                        "layer",
                        "kind",
                        "stride",
                        "cumulative stride",
                        "output shape",
                        "mean error",
                        "aliasing energy",
                    ],
                    rows,
                )
                + "</details>"
            )
            if len(layers_) > MAX_TABLE_LAYERS:
                parts.append(note(f"First {MAX_TABLE_LAYERS} of {len(layers_)} layers listed."))
        parts.append(folder_pngs(run))
    return "".join(parts) if len(parts) > 1 else None
