"""`jaggy train` output (train.json): each variant's accuracy and invariance, by how typical
the position and the image are and by object size, with the figures of the experiment."""

from __future__ import annotations

from .._registry import has_file, register_section
from .._templates import number, svg_markup
from ._common import file_section, metric_label

MAIN_METRICS = ("accuracy", "p_top1_change", "jaggedness", "mac")
GROUP_METRICS = ("accuracy", "p_top1_change")


def _entry(group: dict | None, metric: str, digits: int = 3) -> dict | str:
    entry = (group or {}).get(metric) if isinstance(group, dict) else None
    return {"entry": entry, "digits": digits} if isinstance(entry, dict) else "–"


def _last_train_accuracy(row: dict) -> str:
    history = row.get("history") or []
    value = history[-1].get("train_accuracy") if history and isinstance(history[-1], dict) else None
    return number(value, 3)


def _seconds(row: dict) -> str:
    seconds = row.get("seconds") or {}
    parts = [
        f"{phase} {number((seconds.get(phase) or {}).get('wall'), 1)}"
        for phase in ("train", "audit", "analysis")
        if isinstance(seconds.get(phase), dict)
    ]
    return ", ".join(parts)


def _group_table(rows: list[dict], groups_of, metric: str) -> dict | None:
    """Variants x bins of one grouping, one metric; None when no variant has the grouping."""
    labels: list[str] = []
    for row in rows:
        for group in groups_of(row) or []:
            if isinstance(group, dict) and group.get("bin") not in labels:
                labels.append(group.get("bin"))
    if not labels:
        return None
    cells = []
    for row in rows:
        index = {g.get("bin"): g for g in groups_of(row) or [] if isinstance(g, dict)}
        cells.append([row.get("name")] + [_entry(index.get(label), metric) for label in labels])
    return {"header": ["variant"] + labels, "rows": cells, "metric": metric_label(metric)}


def _size_table(rows: list[dict], metric: str) -> dict | None:
    sizes: list[str] = []
    for row in rows:
        sizes += [s for s in (row.get("by_size") or {}) if s not in sizes]
    if not sizes:
        return None
    sizes.sort(key=lambda s: int(s) if str(s).isdigit() else 0)
    cells = [
        [row.get("name")] + [_entry((row.get("by_size") or {}).get(s), metric) for s in sizes]
        for row in rows
    ]
    return {
        "header": ["variant"] + [f"{s} px" for s in sizes],
        "rows": cells,
        "metric": metric_label(metric),
    }


def _effects(record: dict) -> list[dict]:
    tables = []
    effects = [e for e in record.get("effects") or [] if isinstance(e, dict)]
    for key, title in (
        ("by_baseline_position_density", "by the baseline's position density"),
        ("by_image_distance_pixels", "by image typicality (pixels)"),
    ):
        for metric in GROUP_METRICS:
            table = _group_table(
                [{"name": e.get("variant"), key: e.get(key)} for e in effects],
                lambda row, key=key: row.get(key),
                metric,
            )
            if table:
                table["title"] = f"{table['metric']}: variant − baseline, {title}"
                tables.append(table)
    return tables


def run_block(run, record) -> dict | None:
    if not (isinstance(record, dict) and isinstance(record.get("variants"), list)):
        return None
    rows = [r for r in record.get("variants") or [] if isinstance(r, dict)]
    dataset = record.get("dataset") or {}
    seconds = record.get("seconds") or {}
    machine = record.get("machine") or {}
    facts = [
        ("experiment", record.get("experiment")),
        ("model", record.get("model")),
        ("training images", dataset.get("n_train")),
        ("held-out images", dataset.get("n_heldout")),
        ("audited images", dataset.get("n_eval_images")),
        ("object sizes (px)", ", ".join(map(str, dataset.get("eval_sizes") or []))),
        ("classes", ", ".join(map(str, record.get("class_names") or []))[:300]),
        ("k (typicality)", (record.get("typicality") or {}).get("k")),
        (
            "wall / CPU seconds",
            f"{number(seconds.get('wall'), 0)} / {number(seconds.get('cpu'), 0)}"
            if seconds
            else None,
        ),
        (
            "load average (1, 5, 15 min)",
            ", ".join(map(str, machine.get("load_average_1_5_15") or [])) or None,
        ),
    ]
    header = ["variant", "remedies", "augment", "train accuracy"]
    header += [metric_label(m) for m in MAIN_METRICS] + ["parameters", "seconds (wall)"]
    variant_rows = [
        [
            row.get("name"),
            " + ".join(row.get("remedies") or []) or "–",
            row.get("augment") or "–",
            _last_train_accuracy(row),
            *[_entry(row.get("overall"), m) for m in MAIN_METRICS],
            f"{int(row['parameters']):,}" if isinstance(row.get("parameters"), int) else "–",
            _seconds(row),
        ]
        for row in rows
    ]
    groupings = []
    for title, groups_of in (
        (
            "by position density of the variant's own training positions",
            lambda r: r.get("by_position_density"),
        ),
        (
            "by image typicality: distance to the k nearest training images, pixels",
            lambda r: (r.get("by_image_distance") or {}).get("pixels"),
        ),
        (
            "by image typicality: distance in the variant's feature space",
            lambda r: (r.get("by_image_distance") or {}).get("features"),
        ),
    ):
        for metric in GROUP_METRICS:
            table = _group_table(rows, groups_of, metric)
            if table:
                table["title"] = f"{table['metric']} {title}"
                groupings.append(table)
    for metric in GROUP_METRICS:
        table = _size_table(rows, metric)
        if table:
            table["title"] = f"{table['metric']} by object size"
            groupings.append(table)
    distill = [
        [
            row.get("name"),
            (row.get("distill") or {}).get("teacher", "original model"),
            number((row.get("distill") or {}).get("kl_heldout_before"), 4),
            number((row.get("distill") or {}).get("kl_heldout_after"), 4),
        ]
        for row in rows
        if isinstance(row.get("distill"), dict)
    ]
    charts = []
    if record.get("experiment") == "canvas" and rows and all("by_position" in r for r in rows):
        from ...train._figures import report_svgs

        charts = [svg_markup(svg) for svg in report_svgs(record).values()]
    return {
        "run": run,
        "facts": facts,
        "variant_header": header,
        "variant_rows": variant_rows,
        "groupings": groupings,
        "effects": _effects(record),
        "distill": distill,
        "charts": charts,
    }


@register_section(
    "train", "Training: learning invariance from data", order=72, present=has_file("train.json")
)
def train(runs, report):
    return file_section(runs, "train.json", "train.html.j2", run_block)
