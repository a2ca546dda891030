"""Golden numbers: a small seeded audit's predictions and summary, pinned in a checked-in fixture.

The fixture (`golden_audit.json`) was written by this module's `main()` from the code before
the results package existed; any change to how views are made, run, stored or summarised shows
up here. Regenerate it (`python tests/results/test_results_golden.py`) only for a change that
is meant to alter numbers, and say so in the commit.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

HERE = Path(__file__).parent
FIXTURE = HERE / "golden_audit.json"
# tiny_jumpy changes its top-1 answer; tiny_jumpy1000 moves c* in and out of its top-5.
MODELS = ["tiny_jumpy", "tiny_jumpy1000"]
PROTOCOLS = ["crop", "black", "mean", "inpaint", "scale", "circular", "fourier"]
# Columns renamed since the fixture was written: fixture name -> current name.
RENAMED = {"p_label": "p_ref"}
# Keys added to summary.json since the fixture was written (they hold no measured number).
ADDED_KEYS = {"schema_version"}
FLOAT_TOLERANCE = 1e-6  # float32 probabilities; summary values are means of them


def golden_audit(tmp: Path, model: str) -> tuple[dict, dict]:
    """Run the pinned audit of `model` in `tmp`; returns (predictions columns, summary)."""
    sys.path.insert(0, str(HERE.parent))
    from conftest import write_synthetic_images
    from jaggy.engine import AuditConfig, run_audit

    images = tmp / "images"
    paths = write_synthetic_images(images, 4, seed=3)
    labels = tmp / "labels.csv"
    labels.write_text("".join(f"{p.name},{c}\n" for p, c in zip(paths[:3], (2, 5, 7), strict=True)))
    config = AuditConfig(
        model=f"py:tinynets:{model}",
        data=str(images),
        labels=str(labels),
        protocols=list(PROTOCOLS),
        sizes=[20, 16],
        steps=6,
        batch_size=8,
        workers=0,
        threads=1,
        chunk_images=3,
        seed=1,
        out=str(tmp / "out"),
    )
    result = run_audit(config, progress=False)
    columns = pq.read_table(result.out / "predictions.parquet").to_pydict()
    return columns, json.loads((result.out / "summary.json").read_text())


def assert_close(actual, expected, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), where
        for key in expected:
            assert_close(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert isinstance(actual, float), f"{where}: {actual!r} != {expected!r}"
        if math.isnan(expected):
            assert math.isnan(actual), f"{where}: {actual!r} != nan"
        else:
            assert math.isclose(actual, expected, rel_tol=FLOAT_TOLERANCE, abs_tol=1e-9), (
                f"{where}: {actual!r} != {expected!r}"
            )
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("model", MODELS)
def test_golden_predictions_and_summary(tmp_path, model):
    expected = json.loads(FIXTURE.read_text())[model]
    columns, summary = golden_audit(tmp_path, model)
    pinned = {RENAMED.get(name, name): values for name, values in expected["predictions"].items()}
    for name, values in pinned.items():
        assert name in columns, f"predictions.parquet lost column {name}"
        assert_close(columns[name], values, f"predictions.{name}")
    summary = {k: v for k, v in summary.items() if k not in ADDED_KEYS}
    assert_close(without_new_metrics(summary, expected["summary"]), expected["summary"], "summary")


def without_new_metrics(summary: dict, expected: dict) -> dict:
    """The summary less the keys added after the fixture was written (new metrics, counts):
    they add keys, and must leave every pinned number as it was."""
    known = {m for entry in expected["protocols"].values() for m in entry}
    protocols = {  # new metrics and counts (n_nonfinite_views) add keys; pinned ones stay
        key: {m: v for m, v in entry.items() if m in known}
        for key, entry in summary["protocols"].items()
    }
    return {**summary, "protocols": protocols}


def main() -> None:
    import tempfile

    golden = {}
    for model in MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            columns, summary = golden_audit(Path(tmp), model)
        golden[model] = {"predictions": columns, "summary": summary}
    FIXTURE.write_text(json.dumps(golden) + "\n")
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
