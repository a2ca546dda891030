"""Runs over perturbation sequences: which runs read videos and frame folders, what their
manifest records about decoding, and flip rates against a baseline run (imagenet_p.json)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ArgumentError

if TYPE_CHECKING:
    from ..protocols import Protocol
    from ._config import AuditConfig
    from ._setup import AuditSetup


def check_sequence_protocols(protocols: list[Protocol], config: AuditConfig) -> bool:
    """True when the run reads videos / frame folders (the `video` protocol). Such a run
    cannot also use image protocols or the sample photos; frame options need it."""
    sequences = [p.key for p in protocols if p.reads_sequences]
    images = [p.key for p in protocols if not p.reads_sequences]
    if sequences and images:
        raise ArgumentError(
            f"--protocol {' '.join(sequences)} reads videos and frame folders, "
            f"{' '.join(images)} read still images: run them as separate audits"
        )
    if sequences and config.samples:
        raise ArgumentError(
            "--samples are still photos; the video protocol needs DATA: a video, a folder of "
            "frames or a folder of videos"
        )
    if not sequences:
        changed = [
            flag
            for flag, value, default in (
                ("--start", config.start, 0),
                ("--frame-stride", config.frame_stride, 1),
                ("--max-frames", config.max_frames, None),
            )
            if value != default
        ]
        if changed:
            raise ArgumentError(f"{', '.join(changed)} choose video frames: add --protocol video")
    return bool(sequences)


def sequence_manifest(setup: AuditSetup) -> dict:
    """The manifest's `video` entry (decoder, versions, colour conversion, frame selection)
    for a run over sequences; nothing otherwise."""
    if not setup.reads_sequences:
        return {}
    from ..data._video import decoder_description

    return {"video": {**decoder_description(), "frames": setup.config.frame_options()}}


IMAGENET_P_FILE = "imagenet_p.json"


def _read_baseline(root: Path):
    """The baseline folder's summary, manifest and run record, through jaggy.results; its
    one-line errors (missing, damaged, another schema) become argument errors."""
    from ..errors import DataError
    from ..results import read_manifest, read_run_record, read_summary

    try:
        return read_summary(root), read_manifest(root), read_run_record(root)
    except DataError as exc:
        raise ArgumentError(f"--baseline: {exc}") from exc


def check_baseline(config: AuditConfig, protocols: list[Protocol]) -> dict | None:
    """The baseline run's flip probability and top-5 distance per sequence protocol, read
    before any work. Refuses a folder that holds no finished audit, one measured at another
    --difficulty, and one that shares no sequence protocol with this run."""
    if config.baseline is None:
        return None
    from ..metrics._imagenet_p import SEQUENCE_PROTOCOLS

    root = Path(config.baseline)
    if not root.is_dir():
        raise ArgumentError(f"--baseline '{root}' is not a folder; give a finished audit's --out")
    keys = [p.key for p in protocols if p.name in SEQUENCE_PROTOCOLS]
    if not keys:
        raise ArgumentError(
            "--baseline normalises perturbation sequences: add --protocol translate, rotate, "
            "tilt, rescale, brightness or video"
        )
    summary, manifest, run_record = _read_baseline(root)
    difficulty = int(manifest.config.get("difficulty", 1))
    if difficulty != config.difficulty:
        raise ArgumentError(
            f"--baseline '{root}' was measured at --difficulty {difficulty}, this run at "
            f"{config.difficulty}: flip rates compare runs at the same difficulty"
        )
    measured = summary.protocols
    shared = [k for k in keys if k in measured]
    if not shared:
        raise ArgumentError(
            f"--baseline '{root}' measured none of this run's sequences ({', '.join(keys)}); "
            f"it has {', '.join(measured) or 'no protocol'}"
        )
    identity = run_record.identity if run_record is not None else {}
    return {
        "path": str(root.resolve()),
        "model": manifest.model_spec or summary.model,
        "difficulty": difficulty,
        "images_digest": identity.get("images_digest"),
        "values": {key: _sequence_values(measured[key].to_dict()) for key in shared},
    }


def _sequence_values(entry: dict) -> dict:
    return {
        name: (entry.get(name) or {}).get("value") for name in ("flip_probability", "top5_distance")
    }


def write_imagenet_p(setup: AuditSetup, out: Path, summary: dict, identity: dict) -> dict | None:
    """imagenet_p.json: flip rates against the baseline (mFR, mT5D), when one was given."""
    baseline = setup.baseline
    if baseline is None:
        return None
    from ..metrics._imagenet_p import flip_rates
    from ..results._atomic import atomic_write_json

    names = {p.key: p.name for p in setup.protocols}
    run = {
        key: _sequence_values(entry)
        for key, entry in summary["protocols"].items()
        if key in baseline["values"]
    }
    rates = flip_rates(run, baseline["values"])
    for key, row in rates["perturbations"].items():
        row["style"] = "video" if names.get(key) == "video" else "ImageNet-P-style"
    record = {
        "definition": "Hendrycks & Dietterich, ICLR 2019: flip rate = flip probability / the "
        "baseline's, top-5 distance rate likewise; mFR and mT5D are their means over the "
        "perturbations both runs measured",
        "difficulty": setup.config.difficulty,
        "baseline": {
            "path": baseline["path"],
            "model": baseline["model"],
            "same_images": baseline["images_digest"] == identity.get("images_digest"),
        },
        **rates,
    }
    atomic_write_json(out / IMAGENET_P_FILE, record)
    return record
