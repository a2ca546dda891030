"""The streaming reader yields whole images whatever the batch size; the summary built from it
equals the one of sequences built in memory without the reader."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaggy.metrics import summarize_predictions
from jaggy.metrics._summary import summarize_sequences
from jaggy.results import PredictionSequences, iter_sequences, read_sequences
from jaggy.results._predictions import PREDICTION_SCHEMA

PROTOCOLS = ("crop", "black@16")


def write_predictions(path, row_group_size, seed=0) -> dict:
    """Random rows of 9 images x 2 protocol keys (1..5 views each), written in the engine's
    order (image-major); returns the columns."""
    rng = np.random.default_rng(seed)
    columns = {name: [] for name in PREDICTION_SCHEMA.names}
    for image in range(9):
        for protocol in PROTOCOLS:
            n = int(rng.integers(1, 6))
            label = int(rng.integers(-1, 4))
            for view in range(n):
                ids = rng.permutation(6)[:5].tolist()
                probs = sorted(rng.random(5).tolist(), reverse=True)
                row = {
                    "image_index": image,
                    "image_id": f"img{image}.png",
                    "protocol": protocol,
                    "protocol_name": protocol.split("@")[0],
                    "view": view,
                    "dx": float(view),
                    "dy": 0.0,
                    "size": 16,
                    "angle": 0.0,
                    "label": label,
                    "ref_class": max(label, 0),
                    "top1": ids[0],
                    "top5_ids": ids,
                    "top5_probs": probs,
                    "p_ref": float(rng.random()),
                    "p_prev_top1": None if view == 0 else float(rng.random()),
                    "finite": True,
                    "feat_cos": float("nan") if view == 0 else float(rng.random() / 10),
                    "feat_rel_l2": float("nan") if view == 0 else float(rng.random()),
                }
                for name, value in row.items():
                    columns[name].append(value)
    pq.write_table(pa.table(columns, schema=PREDICTION_SCHEMA), path, row_group_size=row_group_size)
    return columns


def in_memory_sequences(columns: dict) -> dict[str, PredictionSequences]:
    """Sequences per key straight from the columns (no reader)."""
    keys = np.asarray(columns["protocol"])
    out = {}
    for key in PROTOCOLS:
        rows = np.nonzero(keys == key)[0]
        subset = {name: [columns[name][i] for i in rows] for name in columns}
        out[key] = PredictionSequences.from_columns(subset, protocol=key)
    return out


@pytest.mark.parametrize("batch_size", [1, 3, 7, 1000])
def test_reader_yields_whole_images_at_any_batch_size(tmp_path, batch_size):
    path = tmp_path / "p.parquet"
    columns = write_predictions(path, row_group_size=4)
    expected = in_memory_sequences(columns)
    seen: dict[str, list[int]] = {key: [] for key in PROTOCOLS}
    for seq in iter_sequences(path, batch_size=batch_size, optional=["image_id", "dx"]):
        whole = expected[seq.protocol]
        assert seq.protocol_name == seq.protocol.split("@")[0]
        for g in range(seq.n_images):
            image = int(seq.image_index[seq.starts[g]])
            seen[seq.protocol].append(image)
            mine = seq.image(g)
            theirs = whole.image(int(np.nonzero(whole.image_index[whole.starts] == image)[0][0]))
            np.testing.assert_array_equal(mine.view, theirs.view)
            np.testing.assert_array_equal(mine.top5_ids, theirs.top5_ids)
            np.testing.assert_allclose(mine.p_ref, theirs.p_ref, rtol=1e-6)
            np.testing.assert_allclose(mine.feat_cos, theirs.feat_cos, rtol=1e-6)
            np.testing.assert_allclose(mine.feat_rel_l2, theirs.feat_rel_l2, rtol=1e-6)
            np.testing.assert_array_equal(mine.dx, mine.view.astype(float))
            assert set(mine.image_id.tolist()) == {f"img{image}.png"}
    assert seen == {key: list(range(9)) for key in PROTOCOLS}
    read = read_sequences(path, batch_size=batch_size)
    assert list(read) == list(PROTOCOLS)


def test_streamed_summary_equals_in_memory_summary(tmp_path):
    path = tmp_path / "p.parquet"
    write_predictions(path, row_group_size=3)
    streamed = summarize_predictions(path, seed=2)
    stored = pq.read_table(path).to_pydict()  # float32 as stored, without the reader
    in_memory = summarize_sequences(in_memory_sequences(stored), seed=2)
    assert streamed == in_memory
    assert list(streamed) == list(PROTOCOLS)
    assert streamed["crop"]["n_images"] == 9


def test_images_filter_reads_only_those_images(tmp_path):
    path = tmp_path / "p.parquet"
    write_predictions(path, row_group_size=5)
    sequences = read_sequences(path, images={2, 7}, batch_size=4)
    for seq in sequences.values():
        assert sorted(set(seq.image_index.tolist())) == [2, 7]
