"""ImageNet-P's flip rates: a run's flip probability and top-5 distance relative to a baseline.

Hendrycks & Dietterich (ICLR 2019) normalise each perturbation's flip probability by
AlexNet's on the same perturbation, FR_p = FP_p / FP_p(baseline), and average over the
perturbations: mFR = mean_p FR_p; likewise T5D_p = top5_distance_p / top5_distance_p(baseline)
and mT5D = mean_p T5D_p. Here the baseline is any audit run (AlexNet in the paper), at the same
difficulty d, and p runs over the sequence protocols both runs measured.

Example (two perturbations; the baseline flips twice as often on the first):

>>> run = {"translate": {"flip_probability": 0.1, "top5_distance": 1.0},
...        "rotate": {"flip_probability": 0.3, "top5_distance": 2.0}}
>>> base = {"translate": {"flip_probability": 0.2, "top5_distance": 2.0},
...         "rotate": {"flip_probability": 0.3, "top5_distance": 4.0}}
>>> rates = flip_rates(run, base)
>>> rates["mFR"], rates["mT5D"]
(0.75, 0.5)
"""

from __future__ import annotations

# Protocols whose views form a perturbation sequence in ImageNet-P's sense.
SEQUENCE_PROTOCOLS = ("translate", "rotate", "tilt", "rescale", "brightness", "video")


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return float(value) / float(base)


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def flip_rates(run: dict[str, dict], baseline: dict[str, dict]) -> dict:
    """Flip rates of `run` against `baseline`.

    Args:
        run, baseline: {protocol key: {"flip_probability": mean over images, "top5_distance":
            mean over images}} (values may be None when undefined).

    Returns {"perturbations": {key: {"flip_probability", "baseline_flip_probability",
    "flip_rate", "top5_distance", "baseline_top5_distance", "top5_distance_rate"}}, "mFR",
    "mT5D"}, over the keys both runs have, in the run's order. A rate whose baseline value is
    0 or undefined is None and left out of the mean.
    """
    rows = {}
    for key, entry in run.items():
        if key not in baseline:
            continue
        base = baseline[key]
        rows[key] = {
            "flip_probability": entry.get("flip_probability"),
            "baseline_flip_probability": base.get("flip_probability"),
            "flip_rate": _ratio(entry.get("flip_probability"), base.get("flip_probability")),
            "top5_distance": entry.get("top5_distance"),
            "baseline_top5_distance": base.get("top5_distance"),
            "top5_distance_rate": _ratio(entry.get("top5_distance"), base.get("top5_distance")),
        }
    return {
        "perturbations": rows,
        "mFR": _mean([r["flip_rate"] for r in rows.values()]),
        "mT5D": _mean([r["top5_distance_rate"] for r in rows.values()]),
    }
