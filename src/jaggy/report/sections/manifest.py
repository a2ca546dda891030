"""How each run was made: model, preprocessing, protocols, settings, versions, and the inputs
that were skipped or converted (with reasons)."""

from __future__ import annotations

from .._html import esc, key_values, note, table
from .._registry import has_file, register_section
from ._common import run_heading


def _join(value) -> str | None:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return None if value is None else str(value)


def model_block(manifest: dict) -> str:
    model = manifest.get("model") or {}
    prep = model.get("preprocessing") or {}
    pairs = [
        ("model spec", model.get("spec")),
        ("weights", model.get("weights")),
        ("weights sha256", model.get("weights_sha256")),
        ("remedies", ", ".join(model.get("remedies") or []) or "none"),
        ("classes", model.get("num_classes")),
        (
            "parameters",
            f"{model['parameters']:,}" if isinstance(model.get("parameters"), int) else None,
        ),
        ("input size (px)", prep.get("input_size")),
        ("crop fraction", prep.get("crop_pct")),
        ("interpolation", prep.get("interpolation")),
        ("mean (0..1)", _join(prep.get("mean"))),
        ("std (0..1)", _join(prep.get("std"))),
        ("preprocessing from", prep.get("source")),
    ]
    return "<h4>Model and preprocessing</h4>" + key_values(pairs)


def settings_block(manifest: dict) -> str:
    config = manifest.get("config") or {}
    device = manifest.get("device")
    if isinstance(device, dict):
        device = ", ".join(f"{k}={v}" for k, v in device.items())
    data = config.get("data")
    if config.get("samples"):
        data = (f"{data} + " if data else "") + "sample photos"
    pairs = [
        ("command", _join(manifest.get("command"))),
        ("images from", data),
        ("labels file", config.get("labels")),
        ("path", config.get("path")),
        ("steps", config.get("steps")),
        ("sizes (px)", _join(config.get("sizes"))),
        ("seed", manifest.get("seed", config.get("seed"))),
        ("device", device),
        ("dtype", manifest.get("dtype", config.get("dtype"))),
        ("batch size", manifest.get("batch_size")),
        ("channels last", manifest.get("channels_last")),
        ("processes", manifest.get("world_size")),
        ("started", manifest.get("started")),
        ("finished", manifest.get("finished")),
    ]
    return "<h4>Settings</h4>" + key_values(pairs)


def versions_block(manifest: dict) -> str:
    versions = manifest.get("versions") or {}
    if not isinstance(versions, dict) or not versions:
        return ""
    return "<h4>Versions</h4>" + key_values(sorted(versions.items()))


def protocols_block(manifest: dict) -> str:
    protocols = [p for p in manifest.get("protocols") or [] if isinstance(p, dict)]
    if not protocols:
        return ""
    fields: list[str] = []
    for p in protocols:
        fields += [k for k in p if k not in fields and k != "key"]
    rows = [
        [esc(p.get("key", p.get("name")))] + [esc(p.get(f, "")) for f in fields] for p in protocols
    ]
    return "<h4>Protocols</h4>" + table(["key"] + fields, rows)


def inputs_block(manifest: dict, limit: int) -> str:
    images = manifest.get("images") or {}
    skipped = [s for s in images.get("skipped") or [] if isinstance(s, dict)]
    converted = [c for c in images.get("converted") or [] if isinstance(c, dict)]
    parts = [
        "<h4>Inputs</h4>",
        key_values(
            [
                ("images listed", images.get("total")),
                ("images used", images.get("used")),
                ("skipped", len(skipped)),
                ("converted", len(converted)),
            ]
        ),
    ]
    if skipped:
        rows = [
            [esc(s.get("image_id")), esc(s.get("path")), esc(s.get("reason"))]
            for s in skipped[:limit]
        ]
        parts.append(
            '<div class="skipped">'
            + table(["skipped image", "path", "reason"], rows, css_class="data wrap")
            + "</div>"
        )
        if len(skipped) > limit:
            parts.append(note(f"… and {len(skipped) - limit} more skipped (all in manifest.json)."))
    else:
        parts.append(note("No input was skipped."))
    if converted:
        rows = [[esc(c.get("image_id")), esc(c.get("note"))] for c in converted[:limit]]
        parts.append(table(["converted image", "conversion"], rows, css_class="data wrap"))
        if len(converted) > limit:
            parts.append(note(f"… and {len(converted) - limit} more converted (in manifest.json)."))
    return "".join(parts)


@register_section(
    "manifest", "Runs: model, settings and inputs", order=90, present=has_file("manifest.json")
)
def manifest(runs, report) -> str | None:
    parts = []
    for run in runs:
        data = run.manifest
        if not isinstance(data, dict):
            continue
        parts.append(run_heading(run))
        parts.append(
            '<div class="figure-row">'
            f"<div>{model_block(data)}{versions_block(data)}</div>"
            f"<div>{settings_block(data)}</div></div>"
        )
        parts.append(protocols_block(data))
        parts.append(inputs_block(data, report.limits.listed_inputs))
    return "".join(parts) or None
