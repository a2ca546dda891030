"""Perturbation sequences: ImageNet-P-style sequences and videos, ImageNet-P's table.

Per run: every sequence protocol (the generated ImageNet-P-style ones and `video`) with
ImageNet-P's flip probability and top-5 distance at the run's difficulty (Hendrycks &
Dietterich, ICLR 2019), benign and pm-k accuracy where labels are known (Shankar et al., ICCV
2021), and, when the audit was given `--baseline`, the flip rates, mFR and mT5D from its
imagenet_p.json. P(c*) along each sequence's frames, with the frames, is in the curves section.
"""

from __future__ import annotations

from pathlib import Path

from .._html import esc, note, number, slug, table, value_ci
from .._registry import register_section
from .._run import read_json
from ._common import run_heading

SEQUENCES = ("translate", "rotate", "tilt", "rescale", "brightness", "video")


def sequence_keys(run) -> list[str]:
    """The run's protocol keys that are perturbation sequences, in run order."""
    protocols = (run.summary or {}).get("protocols") or {}
    return [k for k in protocols if k.split("@")[0] in SEQUENCES]


def has_sequences(run_dir: Path) -> bool:
    summary = read_json(Path(run_dir) / "summary.json")
    protocols = summary.get("protocols") if isinstance(summary, dict) else None
    return isinstance(protocols, dict) and any(k.split("@")[0] in SEQUENCES for k in protocols)


def _style(key: str) -> str:
    return "video" if key.split("@")[0] == "video" else "ImageNet-P-style"


def run_table(run) -> str:
    config = (run.manifest or {}).get("config") or {}
    difficulty = int(config.get("difficulty") or 1)
    pmk = int(config.get("pmk") if config.get("pmk") is not None else 10)
    protocols = run.summary["protocols"]
    rates = read_json(run.path / "imagenet_p.json")
    rates = rates if isinstance(rates, dict) else None
    per_key = (rates or {}).get("perturbations") or {}
    labelled = any(
        (protocols[k].get("accuracy") or {}).get("value") is not None for k in sequence_keys(run)
    )
    header = ["sequence", "kind", "sequences", f"flip probability (d = {difficulty})"]
    header += [f"top-5 distance (d = {difficulty})"]
    if labelled:
        header += ["benign accuracy", f"pm-{pmk} accuracy"]
    if rates:
        header += ["flip rate", "top-5 distance rate"]
    rows = []
    for key in sequence_keys(run):
        entry = protocols[key]
        row = [
            f'<a href="#curves-{esc(slug(key))}">{esc(key)}</a>',
            esc(_style(key)),
            number(entry.get("n_images"), 0),
            value_ci(entry.get("flip_probability"), 4),
            value_ci(entry.get("top5_distance"), 2),
        ]
        if labelled:
            row += [value_ci(entry.get("accuracy"), 3), value_ci(entry.get("pmk_accuracy"), 3)]
        if rates:
            found = per_key.get(key) or {}
            row += [number(found.get("flip_rate"), 3), number(found.get("top5_distance_rate"), 3)]
        rows.append(row)
    parts = [run_heading(run), table(header, rows)]
    if rates:
        baseline = rates.get("baseline") or {}
        parts.append(
            "<p><strong>mFR "
            + number(rates.get("mFR"), 3)
            + "</strong> · <strong>mT5D "
            + number(rates.get("mT5D"), 3)
            + "</strong></p>"
        )
        text = (
            f"Flip rates are this run's flip probability (top-5 distance) over the baseline's "
            f"{baseline.get('model') or 'run'} ({baseline.get('path', '')}) on the same "
            "sequence; mFR and mT5D are their means over the sequences both runs measured "
            "(ImageNet-P normalises by AlexNet)."
        )
        if not baseline.get("same_images", True):
            text += " The baseline ran on other images, so the rates compare other sequences."
        parts.append(note(text))
    return "".join(parts)


@register_section("perturbations", "Perturbation sequences", order=28, present=has_sequences)
def perturbations(runs, report) -> str | None:
    blocks = [run_table(run) for run in runs if run.summary and sequence_keys(run)]
    if not blocks:
        return None
    intro = note(
        "ImageNet-P's measures (Hendrycks & Dietterich, ICLR 2019) on each sequence: the flip "
        "probability is the fraction of frame pairs d apart whose top-1 differ, the top-5 "
        "distance how far the top-5 ranking moves between them (0..25), walked as ImageNet-P's "
        "test.py does. ImageNet-P-style sequences are generated from each still with "
        "make_imagenet_p.py's geometry and rounded to 8 bits but not x264-encoded like the "
        "official set, so they are comparable with each other, not with published ImageNet-P "
        "numbers; the official mp4 files read through the video protocol are. With labels, "
        "benign accuracy counts frames whose top-1 is the label, pm-k accuracy only frames "
        "right together with every frame within k of them (Shankar et al., ICCV 2021). P(c*) "
        "along each sequence, with its frames, is in the next section."
    )
    return intro + "".join(blocks)
