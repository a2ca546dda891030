"""The summary streams row groups; images split across row groups are handled exactly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaggy.metrics import read_sequences, summarize_predictions, summarize_sequences


def write_predictions(path, row_group_size, seed=0):
    rng = np.random.default_rng(seed)
    columns = {
        k: []
        for k in (
            "image_index",
            "protocol",
            "view",
            "label",
            "ref_class",
            "top5_ids",
            "top5_probs",
            "p_label",
            "p_prev_top1",
        )
    }
    for image in range(9):
        for protocol in ("crop", "black@16"):
            n = int(rng.integers(1, 6))
            label = int(rng.integers(-1, 4))
            prev = None
            for view in range(n):
                ids = rng.permutation(6)[:5].tolist()
                probs = sorted(rng.random(5).tolist(), reverse=True)
                columns["image_index"].append(image)
                columns["protocol"].append(protocol)
                columns["view"].append(view)
                columns["label"].append(label)
                columns["ref_class"].append(max(label, 0))
                columns["top5_ids"].append(ids)
                columns["top5_probs"].append(probs)
                columns["p_label"].append(float(rng.random()))
                columns["p_prev_top1"].append(None if prev is None else float(rng.random()))
                prev = ids[0]
    table = pa.table(columns)
    pq.write_table(table, path, row_group_size=row_group_size)
    return table


@pytest.mark.parametrize("row_group_size", [1, 3, 7, 1000])
def test_streaming_summary_equals_in_memory_summary(tmp_path, row_group_size):
    path = tmp_path / "p.parquet"
    write_predictions(path, row_group_size)
    assert pq.ParquetFile(path).num_row_groups >= (1 if row_group_size == 1000 else 2)
    streamed = summarize_predictions(path, seed=2)
    in_memory = summarize_sequences(read_sequences(path), seed=2)
    assert streamed == in_memory
    assert list(streamed) == ["crop", "black@16"]
    assert streamed["crop"]["n_images"] == 9
