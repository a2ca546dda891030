"""An audit folder's files: metrics.parquet against summary.json, typed records, permissions,
and folders written by the previous version."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from jaggy.engine import AuditConfig, run_audit
from jaggy.errors import DataError
from jaggy.metrics import list_metrics
from jaggy.metrics._summary import metrics_table
from jaggy.results import (
    SCHEMA_VERSION,
    Summary,
    iter_sequences,
    read_manifest,
    read_metrics,
    read_run_record,
    read_summary,
)
from jaggy.results._atomic import atomic_write_text
from jaggy.results._predictions import PREDICTION_SCHEMA

KEY_COLUMNS = [
    ("image_index", pa.int64()),
    ("image_id", pa.string()),
    ("protocol", pa.string()),
    ("protocol_name", pa.string()),
    ("label", pa.int64()),
    ("ref_class", pa.int64()),
    ("n_views", pa.int64()),
    ("n_pairs", pa.int64()),
    ("n_nonfinite_views", pa.int64()),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import write_synthetic_images

    root = tmp_path_factory.mktemp("audit")
    write_synthetic_images(root / "images", 5)
    old = os.umask(0o022)
    try:
        result = run_audit(
            AuditConfig(
                model="py:tinynets:tiny_jumpy",
                data=str(root / "images"),
                protocols=["crop", "black", "scale"],
                sizes=[20, 16],
                steps=4,
                batch_size=8,
                workers=0,
                chunk_images=2,
                out=str(root / "out"),
            ),
            progress=False,
        )
    finally:
        os.umask(old)
    return result


def test_metrics_table_has_the_contract_columns(run):
    table = read_metrics(run.out)
    assert [(f.name, f.type) for f in table.schema][: len(KEY_COLUMNS)] == KEY_COLUMNS
    metric_fields = list(table.schema)[len(KEY_COLUMNS) :]
    assert [f.name for f in metric_fields] == list_metrics()
    assert all(f.type == pa.float64() for f in metric_fields)
    keys = ["crop", "black@20", "black@16", "scale"]
    assert table.num_rows == 5 * len(keys)
    assert list(dict.fromkeys(table.column("protocol").to_pylist())) == keys
    for key in keys:
        rows = table.filter(pc.equal(table.column("protocol"), key))
        assert sorted(rows.column("image_index").to_pylist()) == list(range(5))
        assert set(rows.column("n_views").to_pylist()) == {4}
        assert set(rows.column("n_pairs").to_pylist()) == {3}
        assert set(rows.column("n_nonfinite_views").to_pylist()) == {0}
        assert set(rows.column("protocol_name").to_pylist()) == {key.split("@")[0]}
    assert set(table.column("label").to_pylist()) == {-1}
    assert all(math.isnan(v) for v in table.column("accuracy").to_pylist())  # no labels


def test_metrics_parquet_means_equal_summary_values(run):
    table = read_metrics(run.out)
    summary = read_summary(run.out)
    assert summary.protocols
    for key, entry in summary.protocols.items():
        rows = table.filter(pc.equal(table.column("protocol"), key))
        assert entry.n_images == rows.num_rows
        assert entry.n_pairs == sum(rows.column("n_pairs").to_pylist())
        assert entry.n_nonfinite_views == 0
        for name in list_metrics():
            values = np.asarray(rows.column(name).to_pylist(), dtype=np.float64)
            finite = values[np.isfinite(values)]
            if len(finite) == 0:
                assert entry.value(name) is None
            else:
                assert entry.value(name) == pytest.approx(float(finite.mean()), rel=1e-12)
                lo, hi = entry.metrics[name].ci95
                assert lo <= entry.value(name) <= hi


def test_metrics_parquet_is_the_metrics_of_the_predictions(run):
    """Rows recomputed from predictions.parquet alone equal the stored ones."""
    stored = read_metrics(run.out)
    recomputed = metrics_table(run.predictions, seed=0, consistency_k=10)
    assert recomputed.schema.names == stored.schema.names
    for name in stored.schema.names:  # NaN (undefined) equals NaN here
        np.testing.assert_array_equal(
            recomputed.column(name).to_numpy(), stored.column(name).to_numpy(), err_msg=name
        )


def test_metrics_blocks_are_written_in_few_row_groups_rows_unchanged(run, tmp_path, monkeypatch):
    """Blocks (per protocol key and batch) are gathered into row groups of ROW_GROUP_ROWS or
    more rows, in order: the same rows as one block per row group."""
    from jaggy.metrics._summary import metrics_blocks
    from jaggy.results import _metrics_table

    blocks = list(metrics_blocks(run.predictions, seed=0, consistency_k=10))
    assert len(blocks) >= 4 and all(b.num_rows < 5 for b in blocks)
    monkeypatch.setattr(_metrics_table, "ROW_GROUP_ROWS", 5)
    path = tmp_path / "metrics.parquet"
    rows = _metrics_table.write_metrics(path, iter(blocks), list_metrics())
    assert rows == sum(b.num_rows for b in blocks)
    groups = [
        pq.ParquetFile(path).metadata.row_group(i).num_rows
        for i in range(pq.ParquetFile(path).num_row_groups)
    ]
    assert len(groups) < len(blocks) and all(n >= 5 for n in groups[:-1])
    written, stored = pq.read_table(path), read_metrics(run.out)
    assert written.schema.equals(stored.schema, check_metadata=True)
    for name in stored.schema.names:  # NaN (undefined) equals NaN here
        np.testing.assert_array_equal(
            written.column(name).to_numpy(), stored.column(name).to_numpy(), err_msg=name
        )


def test_records_are_typed_and_round_trip(run):
    summary = read_summary(run.out)
    assert isinstance(summary, Summary)
    assert summary.to_dict() == json.loads((run.out / "summary.json").read_text())
    assert summary.to_dict() == run.summary.to_dict()
    manifest = read_manifest(run.out)
    assert manifest.model_spec == "py:tinynets:tiny_jumpy"
    assert manifest.to_dict() == json.loads((run.out / "manifest.json").read_text())
    record = read_run_record(run.out)
    assert record.current.status == "finished" and record.current.session == 0
    assert record.batch_size == manifest.batch_size == 8
    assert record.schema_version == summary.schema_version == SCHEMA_VERSION


def test_outputs_are_ordinary_files_readable_by_group_and_others(run):
    names = ["predictions.parquet", "metrics.parquet", "summary.json", "manifest.json"]
    for name in [*names, "run.json"]:
        mode = stat.S_IMODE((run.out / name).stat().st_mode)
        assert mode == 0o644, f"{name} is {oct(mode)}"
    for chunk in (run.out / "parts").iterdir():
        assert stat.S_IMODE(chunk.stat().st_mode) == 0o644


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writer_follows_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary left


def _previous_version_folder(run, folder):
    """The run as jaggy 0.1.0 wrote it: column p_label, no schema_version anywhere."""
    folder.mkdir()
    table = pq.read_table(run.predictions).replace_schema_metadata(None)
    names = ["p_label" if n == "p_ref" else n for n in table.column_names]
    pq.write_table(table.rename_columns(names), folder / "predictions.parquet")
    for name in ("summary.json", "manifest.json", "run.json"):
        data = json.loads((run.out / name).read_text())
        data.pop("schema_version")
        (folder / name).write_text(json.dumps(data))
    return folder


def test_previous_version_folder_is_refused_naming_both_versions(run, tmp_path):
    old = _previous_version_folder(run, tmp_path / "old")
    with pytest.raises(
        DataError, match=rf"schema 1, column p_label.*reads schema {SCHEMA_VERSION}"
    ):
        next(iter_sequences(old / "predictions.parquet"))
    with pytest.raises(DataError, match=rf"schema 1.*reads schema {SCHEMA_VERSION}"):
        read_metrics(old)
    for read in (read_summary, read_manifest, read_run_record):
        with pytest.raises(
            DataError, match=rf"earlier jaggy.*schema 1.*reads schema {SCHEMA_VERSION}"
        ):
            read(old)


def _schema2_folder(run, folder):
    """The run as the jaggy before representation changes wrote it: schema 2, no feat_*."""
    folder.mkdir()
    table = pq.read_table(run.predictions).drop(["feat_cos", "feat_rel_l2", "angle"])
    table = table.replace_schema_metadata({b"jaggy.schema_version": b"2"})
    pq.write_table(table, folder / "predictions.parquet")
    for name in ("summary.json", "manifest.json", "run.json"):
        data = json.loads((run.out / name).read_text())
        data["schema_version"] = 2
        (folder / name).write_text(json.dumps(data))
    return folder


def test_schema2_folder_is_refused_naming_both_versions(run, tmp_path):
    old = _schema2_folder(run, tmp_path / "v2")
    with pytest.raises(
        DataError, match=rf"predictions schema 2; this jaggy reads schema {SCHEMA_VERSION}"
    ):
        next(iter_sequences(old / "predictions.parquet"))
    for read in (read_summary, read_manifest, read_run_record):
        with pytest.raises(DataError, match=rf"schema 2; this jaggy reads schema {SCHEMA_VERSION}"):
            read(old)


def test_resuming_a_previous_version_run_is_refused(run, tmp_path):
    old = _previous_version_folder(run, tmp_path / "old")
    config = AuditConfig(
        model="py:tinynets:tiny_jumpy",
        data=str(tmp_path / "nothing"),
        out=str(old),
        batch_size=8,
        workers=0,
    )
    from jaggy.engine._store import RunStore

    with pytest.raises(DataError, match=f"run schema 1.*reads schema {SCHEMA_VERSION}"):
        RunStore(config.out).open({}, resume=True)


def test_schema_version_is_recorded_in_every_parquet_file(run):
    for name in ("predictions.parquet", "metrics.parquet"):
        meta = pq.read_schema(run.out / name).metadata
        assert meta[b"jaggy.schema_version"] == str(SCHEMA_VERSION).encode()
    assert "p_ref" in PREDICTION_SCHEMA.names and "p_label" not in PREDICTION_SCHEMA.names
