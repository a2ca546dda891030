"""How each run was made: model, preprocessing, protocols, settings, versions, and the inputs
that were skipped or converted (with reasons)."""

from __future__ import annotations

from .._registry import has_file, register_section
from .._templates import render_template


def _join(value) -> str | None:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return None if value is None else str(value)


def model_pairs(manifest: dict) -> list[tuple[str, object]]:
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
    return pairs


def settings_pairs(manifest: dict) -> list[tuple[str, object]]:
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
        ("processes", manifest.get("world_size")),
        ("started", manifest.get("started")),
        ("finished", manifest.get("finished")),
    ]
    return pairs


def protocol_table(manifest: dict) -> dict | None:
    """The manifest's protocols: one row each, one column per parameter any of them has."""
    protocols = [p for p in manifest.get("protocols") or [] if isinstance(p, dict)]
    if not protocols:
        return None
    fields: list[str] = []
    for p in protocols:
        fields += [k for k in p if k not in fields and k != "key"]
    rows = [[p.get("key", p.get("name"))] + [p.get(f, "") for f in fields] for p in protocols]
    return {"header": ["key"] + fields, "rows": rows}


def inputs(manifest: dict, limit: int) -> dict:
    images = manifest.get("images") or {}
    skipped = [s for s in images.get("skipped") or [] if isinstance(s, dict)]
    converted = [c for c in images.get("converted") or [] if isinstance(c, dict)]
    return {
        "counts": [
            ("images listed", images.get("total")),
            ("images used", images.get("used")),
            ("skipped", len(skipped)),
            ("converted", len(converted)),
        ],
        "skipped": [[s.get("image_id"), s.get("path"), s.get("reason")] for s in skipped[:limit]],
        "more_skipped": max(0, len(skipped) - limit),
        "converted": [[c.get("image_id"), c.get("note")] for c in converted[:limit]],
        "more_converted": max(0, len(converted) - limit),
    }


@register_section(
    "manifest", "Runs: model, settings and inputs", order=90, present=has_file("manifest.json")
)
def manifest(runs, report):
    blocks = []
    for run in runs:
        data = run.manifest
        if not isinstance(data, dict):
            continue
        versions = data.get("versions") or {}
        blocks.append(
            {
                "run": run,
                "model": model_pairs(data),
                "versions": sorted(versions.items()) if isinstance(versions, dict) else [],
                "settings": settings_pairs(data),
                "protocols": protocol_table(data),
                "inputs": inputs(data, report.limits.listed_inputs),
            }
        )
    return render_template("manifest.html.j2", blocks=blocks) if blocks else None
