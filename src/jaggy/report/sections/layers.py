"""`jaggy layers` output: where invariance breaks, layer by layer (stride map, equivariance
error per shift, aliasing energy), from layers.json and the folder's PNG figures."""

from __future__ import annotations

import base64
import math

from ...figures._charts import Series, line_chart
from .._registry import has_file, register_section
from .._templates import number, svg_markup
from ._common import chart_or_none, file_section, finite

MAX_PNGS = 8
MAX_PNG_BYTES = 3_000_000
MAX_TABLE_LAYERS = 400
MAX_SHIFT_CURVES = 8
LEAD_FIGURE = "feature_maps.png"  # the study's picture; shown open, the others folded


def shift_axis(shifts, n: int) -> tuple[list[float], str]:
    """x values of a layers.json's per-shift lists and the axis label. `shifts` may be a list
    of numbers or of {"index", "dx", "dy", ...} objects; without it the index is used."""
    if isinstance(shifts, list) and len(shifts) == n:
        if all(isinstance(s, dict) for s in shifts):
            dx = [finite(s.get("dx")) or 0.0 for s in shifts]
            dy = [finite(s.get("dy")) or 0.0 for s in shifts]
            xs = dx if any(dx) else dy
            if all(b >= a for a, b in zip(xs, xs[1:], strict=False)):
                return xs, "input shift (px along the path)"
        elif all(finite(s) is not None for s in shifts):
            return [float(s) for s in shifts], "input shift (px)"
    return [float(i) for i in range(n)], "shift (step)"


def error_by_shift(value, xs: list[float] | None = None) -> list[tuple[float, float]]:
    """(shift, error) pairs from the forms a per-shift error may take: a list (aligned with
    `xs`, else index = shift), a {shift: error} mapping, or a list of {"shift", "error"}."""
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
                s = xs[i] if xs and i < len(xs) else float(i)
                e = finite(v)
            if s is not None and e is not None:
                pairs.append((s, e))
    return sorted(pairs)


def mean_error(pairs: list[tuple[float, float]]) -> float | None:
    """Mean error over non-zero shifts (shift 0 is the identity)."""
    values = [e for s, e in pairs if s != 0]
    return sum(values) / len(values) if values else None


def _shape(value) -> str:
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value)
    return "" if value is None else str(value)


def _is_subsampling(layer: dict) -> bool:
    if isinstance(layer.get("subsampling"), bool):
        return layer["subsampling"]
    stride = layer.get("stride")
    if isinstance(stride, (list, tuple)):
        return any((finite(s) or 1) > 1 for s in stride)
    return (finite(stride) or 1) > 1


def _png_uri(path) -> str | None:
    """A PNG file as a data URI (None when it is missing, too large or not a PNG)."""
    try:
        if path.stat().st_size > MAX_PNG_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(b"\x89PNG"):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def folder_pngs(run) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The PNG figures left in the folder as (name, data URI): the feature-map picture (shown
    open) and the rest (folded: their content is also drawn above)."""
    paths = sorted(run.path.glob("*.png"))
    if not run.has_predictions:  # an audit's figures/ holds shift curves, drawn elsewhere
        paths += sorted((run.path / "figures").glob("*.png"))
    pngs = [(p.name, _png_uri(p)) for p in paths[:MAX_PNGS]]
    pngs = [(name, uri) for name, uri in pngs if uri]
    lead = [(n, u) for n, u in pngs if n == LEAD_FIGURE]
    return lead, [(n, u) for n, u in pngs if n != LEAD_FIGURE]


def _depth_chart(layers_: list[dict], errors: list[list[tuple[float, float]]]) -> str | None:
    xs = list(range(len(layers_)))
    names = [str(x.get("name")) for x in layers_]
    series = []
    on = [finite(x.get("mean_error_on_grid")) for x in layers_]
    off = [finite(x.get("mean_error_off_grid")) for x in layers_]
    if any(v is not None for v in on + off):
        for label, values in (
            ("shifts off the layer's grid (shiftability)", off),
            ("shifts on the grid (multiples of r)", on),
        ):
            series.append(
                Series(
                    label,
                    xs,
                    [v if v is not None else math.nan for v in values],
                    point_titles=[
                        f"{n}: {number(v, 4)}" for n, v in zip(names, values, strict=True)
                    ],
                )
            )
    else:
        means = [mean_error(e) for e in errors]
        if all(m is None for m in means):
            return None
        series.append(
            Series(
                "mean over shifts ≠ 0",
                xs,
                [m if m is not None else math.nan for m in means],
                point_titles=[f"{n}: {number(m, 4)}" for n, m in zip(names, means, strict=True)],
            )
        )
    reference = series[0].y
    sub = [i for i, x in enumerate(layers_) if _is_subsampling(x)]
    if sub:
        series.append(
            Series(
                "subsampling layers",
                sub,
                [reference[i] for i in sub],
                colour="#000000",
                width=0.0,
                point_titles=[f"{names[i]} (stride {layers_[i].get('stride')})" for i in sub],
            )
        )
    return line_chart(
        series,
        width=580,
        x_label="layer (depth order)",
        y_label="equivariance error",
        title="equivariance error versus depth",
    )


def _shift_chart(layers_, errors, x_label: str) -> str | None:
    # the last layer at each cumulative stride: one curve per resolution of the network
    last: dict[str, int] = {}
    for i, x in enumerate(layers_):
        last[str(x.get("cumulative_stride"))] = i
    chosen = sorted(last.values())
    series = []
    for i in chosen[:MAX_SHIFT_CURVES]:
        if len(errors[i]) >= 2:
            series.append(
                Series(
                    f"{layers_[i].get('name')} (r = {layers_[i].get('cumulative_stride')})",
                    [s for s, _ in errors[i]],
                    [e for _, e in errors[i]],
                )
            )
    return chart_or_none(
        series,
        width=580,
        x_label=x_label,
        y_label="equivariance error",
        title="equivariance error versus shift, one layer per cumulative stride r",
    )


def _invariance_chart(data: dict, xs: list[float], x_label: str) -> str | None:
    series = []
    for key, label in (("pooled", "globally pooled features"), ("logits", "logits")):
        values = (
            (data.get(key) or {}).get("relative_change")
            if isinstance(data.get(key), dict)
            else None
        )
        if isinstance(values, list) and len(values) == len(xs):
            series.append(
                Series(
                    label, xs, [finite(v) if finite(v) is not None else math.nan for v in values]
                )
            )
    return chart_or_none(
        series,
        width=580,
        x_label=x_label,
        y_label="relative change",
        title="invariance after global pooling: change versus shift",
    )


def _aliasing_chart(layers_: list[dict]) -> str | None:
    rows = [(i, x) for i, x in enumerate(layers_) if finite(x.get("aliasing_energy")) is not None]
    if not rows:
        return None
    series = []
    for key, label in (
        ("aliasing_energy", "input of the subsampling layer"),
        ("aliasing_energy_dense", "its output at stride 1"),
        ("aliasing_energy_before_nonlinearity", "before the nonlinearity"),
    ):
        values = [finite(x.get(key)) for _, x in rows]
        if any(v is not None for v in values):
            series.append(
                Series(
                    label,
                    list(range(len(rows))),
                    [v if v is not None else math.nan for v in values],
                    point_titles=[
                        f"{x.get('name')}: {number(v, 4)}"
                        for (_, x), v in zip(rows, values, strict=True)
                    ],
                )
            )
    ticks = [(float(j), str(x.get("cumulative_stride", j))) for j, (_, x) in enumerate(rows)]
    return line_chart(
        series,
        width=580,
        x_ticks=ticks,
        x_label="subsampling layer (cumulative stride after it)",
        y_label="power above Nyquist",
        title="aliasing energy at the subsampling layers",
    )


@register_section(
    "layers", "Layers: where invariance breaks", order=60, present=has_file("layers.json")
)
def layers(runs, report):
    return file_section(runs, "layers.json", "layers.html.j2", run_block)


def run_block(run, data) -> dict | None:
    if not isinstance(data, dict):
        return None
    layers_ = [x for x in data.get("layers") or [] if isinstance(x, dict)]
    n_shifts = max(
        (
            len(x["equivariance_error"])
            for x in layers_
            if isinstance(x.get("equivariance_error"), list)
        ),
        default=0,
    )
    xs, x_label = shift_axis(data.get("shifts"), n_shifts)
    errors = [error_by_shift(x.get("equivariance_error"), xs) for x in layers_]
    protocol = data.get("protocol")
    if isinstance(protocol, dict):
        protocol = ", ".join(f"{k} {v}" for k, v in protocol.items() if v is not None)
    subsampling = data.get("subsampling")
    facts = [
        ("model", data.get("model")),
        ("input size (px)", data.get("input_size")),
        ("total stride", data.get("total_stride")),
        (
            "subsampling layers",
            ", ".join(map(str, subsampling)) if isinstance(subsampling, list) else subsampling,
        ),
        ("shifts", protocol),
        ("periodic (circular) shifts", data.get("periodic")),
        ("images", data.get("n_images")),
    ]
    charts = [
        _depth_chart(layers_, errors),
        _shift_chart(layers_, errors, x_label),
        _invariance_chart(data, xs, x_label),
        _aliasing_chart(layers_),
    ]
    rows = [
        [
            str(i),
            x.get("name"),
            x.get("kind"),
            x.get("stride", ""),
            x.get("cumulative_stride", ""),
            _shape(x.get("out_shape")),
            number(x.get("mean_error_on_grid", mean_error(errors[i])), 4),
            number(x.get("mean_error_off_grid"), 4),
            number(x.get("aliasing_energy"), 4),
        ]
        for i, x in enumerate(layers_[:MAX_TABLE_LAYERS])
    ]
    definitions = data.get("definitions")
    skipped = [s for s in data.get("skipped") or [] if isinstance(s, dict)]
    lead, folded = folder_pngs(run)
    return {
        "title": data.get("model") or run.label,
        "path": run.path,
        "facts": facts,
        "charts": [svg_markup(c) for c in charts if c],
        "rows": rows,
        "n_layers": len(layers_),
        "max_rows": MAX_TABLE_LAYERS,
        "definitions": list(definitions.items()) if isinstance(definitions, dict) else [],
        "skipped": [[s.get("image_id", s.get("path")), s.get("reason")] for s in skipped],
        "lead_pngs": lead,
        "folded_pngs": folded,
    }
