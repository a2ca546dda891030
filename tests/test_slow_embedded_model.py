"""The real embedded model on the real sample photos: every number of summary.json is
recomputed from predictions.parquet by plain loops, and the photos are recognised."""

from __future__ import annotations

import json
import math
import zlib

import pandas as pd
import pytest

from jaggy.engine import AuditConfig, run_audit
from jaggy.metrics import bootstrap_mean_ci
from jaggy.metrics._functional import consistency_pairs

pytestmark = pytest.mark.slow


def slow_per_image(rows: pd.DataFrame, key: str, seed: int, k: int) -> dict[str, float]:
    rows = rows.sort_values("view")
    top5 = [list(v) for v in rows["top5_ids"]]
    probs = [[float(p) for p in v] for v in rows["top5_probs"]]
    prev = [float(p) for p in rows["p_prev_top1"]]
    ref = int(rows["ref_class"].iloc[0])
    label = int(rows["label"].iloc[0])
    n = len(top5)
    pairs = range(1, n)
    out = {
        "p_top1_change": sum(top5[i][0] != top5[i - 1][0] for i in pairs) / (n - 1),
        "mac": sum(abs(probs[i - 1][0] - prev[i]) for i in pairs) / (n - 1),
        "jaggedness": sum((ref in top5[i]) != (ref in top5[i - 1]) for i in pairs) / (n - 1),
    }
    distances = []
    for i in pairs:
        d = 0
        for position, cls in enumerate(top5[i - 1]):
            new = top5[i].index(cls) if cls in top5[i] else 5
            d += abs(position - new)
        distances.append(d)
    out["top5_distance"] = sum(distances) / len(distances)
    image = int(rows["image_index"].iloc[0])
    chosen = consistency_pairs(n, k, seed, image, key)
    out["path_consistency"] = sum(top5[a][0] == top5[b][0] for a, b in chosen) / k
    out["consistency"] = math.nan  # only the paired protocols (zhang, aps_roll) have it
    out["accuracy"] = math.nan if label < 0 else sum(t[0] == label for t in top5) / n
    out["worst_case_accuracy"] = math.nan if label < 0 else float(all(t[0] == label for t in top5))
    return out


def test_embedded_model_summary_recomputes_from_parquet(tmp_path):
    out = tmp_path / "demo"
    config = AuditConfig(
        model="jaggy:efficientnet_lite0",
        samples=True,
        protocols=["crop", "black", "mean", "scale", "circular"],
        sizes=[172, 117],
        steps=5,
        out=str(out),
        seed=7,
        workers=0,
    )
    result = run_audit(config, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary == result.summary.to_dict()
    frame = pd.read_parquet(out / "predictions.parquet")
    assert set(frame["protocol"]) == {
        "crop",
        "black@172",
        "black@117",
        "mean@172",
        "mean@117",
        "scale",
        "circular",
    }
    for key, entry in summary["protocols"].items():
        per_image: dict[str, list[float]] = {}
        for _, rows in frame[frame["protocol"] == key].groupby("image_index"):
            for name, value in slow_per_image(rows, key, seed=7, k=10).items():
                per_image.setdefault(name, []).append(value)
        assert entry["n_images"] == 5 and entry["n_pairs"] == 5 * 4
        for name, values in per_image.items():
            import numpy as np

            boot_seed = [7, zlib.crc32(f"{key}/{name}".encode())]
            value, ci = bootstrap_mean_ci(np.array(values), seed=boot_seed)
            if value is None:
                assert entry[name]["value"] is None
                continue
            assert entry[name]["value"] == pytest.approx(value, abs=1e-12), (key, name)
            assert entry[name]["ci95"] == pytest.approx(ci, abs=1e-12), (key, name)

    # the standard input (circular, view 0) is recognised as the study's photos
    standard = frame[(frame["protocol"] == "circular") & (frame["view"] == 0)]
    top1 = dict(zip(standard["image_id"], standard["top1"], strict=True))
    assert top1["sample/chelsea"] in (281, 282, 285)  # tabby, tiger cat, Egyptian cat
    assert top1["sample/coffee"] == 967  # espresso
    assert top1["sample/rocket"] in (657, 812)  # missile, space shuttle
