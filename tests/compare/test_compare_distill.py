"""`jaggy compare --distill N`: each variant is distilled to the base model before its audit."""

from __future__ import annotations

import json

from jaggy.cli import main


def test_compare_distill_lowers_the_kl_and_audits_distilled_variants(image_folder, tmp_path):
    out = tmp_path / "cmp"
    args = [
        "compare",
        "py:tinynets:tiny",
        str(image_folder),
        "--remedy",
        "blurpool:4",
        "--protocol",
        "crop",
        "--steps",
        "3",
        "--distill",
        "8",
        "--temperature",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--workers",
        "0",
        "--batch-size",
        "8",
    ]
    assert main(args) == 0
    rows = {r["variant"]: r for r in json.loads((out / "compare.json").read_text())["variants"]}
    assert list(rows) == ["base", "blurpool:4 distilled"]
    distill = rows["blurpool:4 distilled"]["distill"]
    assert distill["epochs"] == 8 and len(distill["history"]) == 8
    assert distill["kl_after"] < distill["kl_before"]
    assert (out / rows["blurpool:4 distilled"]["run"] / "summary.json").is_file()
    # seeded: a second comparison distils to the same weights, so the audit resumes
    assert main(args + ["--resume"]) == 0
