"""Perturbation sequences: ImageNet-P-style sequences and videos, ImageNet-P's table.

Per run: every sequence protocol (the generated ImageNet-P-style ones and `video`) with
ImageNet-P's flip probability and top-5 distance at the run's difficulty (Hendrycks &
Dietterich, ICLR 2019), benign and pm-k accuracy where labels are known (Shankar et al., ICCV
2021), and, when the audit was given `--baseline`, the flip rates, mFR and mT5D from its
imagenet_p.json. P(c*) along each sequence's frames, with the frames, is in the curves section.
"""

from __future__ import annotations

from pathlib import Path

from .._registry import register_section
from .._run import read_json
from .._templates import number, render_template, slug

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


def run_table(run) -> dict:
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
            {"href": f"#curves-{slug(key)}", "text": key},
            _style(key),
            number(entry.get("n_images"), 0),
            {"entry": entry.get("flip_probability"), "digits": 4},
            {"entry": entry.get("top5_distance"), "digits": 2},
        ]
        if labelled:
            row += [{"entry": entry.get("accuracy")}, {"entry": entry.get("pmk_accuracy")}]
        if rates:
            found = per_key.get(key) or {}
            row += [number(found.get("flip_rate"), 3), number(found.get("top5_distance_rate"), 3)]
        rows.append(row)
    block = {"run": run, "header": header, "rows": rows, "rates": None}
    if rates:
        baseline = rates.get("baseline") or {}
        text = (
            f"Flip rates are this run's flip probability (top-5 distance) over the baseline's "
            f"{baseline.get('model') or 'run'} ({baseline.get('path', '')}) on the same "
            "sequence; mFR and mT5D are their means over the sequences both runs measured "
            "(ImageNet-P normalises by AlexNet)."
        )
        if not baseline.get("same_images", True):
            text += " The baseline ran on other images, so the rates compare other sequences."
        block["rates"] = {
            "mFR": number(rates.get("mFR"), 3),
            "mT5D": number(rates.get("mT5D"), 3),
            "note": text,
        }
    return block


@register_section("perturbations", "Perturbation sequences", order=28, present=has_sequences)
def perturbations(runs, report):
    blocks = [run_table(run) for run in runs if run.summary and sequence_keys(run)]
    if not blocks:
        return None
    return render_template("perturbations.html.j2", blocks=blocks)
