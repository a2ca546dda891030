"""A full disk or a read-only output folder: a clear error, and the chunks committed before it
stay intact (a resume then completes the run with exactly the uninterrupted rows).

Tests run as root here, where file permissions do not stop writes, so the failures are
injected where the system would raise them (`os.replace`, `os.open` creating a file,
`tempfile.mkstemp`) with the errno
a full disk (ENOSPC) or a read-only mount (EROFS) gives; one test uses real permissions and
runs only as an ordinary user.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import write_synthetic_images
from jaggy.engine import AuditConfig, run_audit
from jaggy.engine._store import RunStore
from jaggy.errors import JaggyError

N_IMAGES, CHUNK = 8, 2  # 4 chunks


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("io") / "images"
    write_synthetic_images(folder, N_IMAGES, side=40, seed=7)
    return folder


def config(images: Path, out: Path) -> AuditConfig:
    return AuditConfig(
        model="py:tinynets:tiny",
        data=str(images),
        protocols=["crop", "black"],
        steps=3,
        sizes=[16],
        batch_size=4,
        chunk_images=CHUNK,
        workers=0,
        out=str(out),
    )


@pytest.fixture(scope="module")
def reference(images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("io") / "reference"
    run_audit(config(images, out), progress=False)
    return out


def fail_when(monkeypatch, module, name: str, target: str, code: int) -> None:
    """Make module.name raise OSError(code) when its last path argument names `target`."""
    real = getattr(module, name)

    def failing(*args, **kwargs):
        where = str(kwargs.get("dir", args[-1] if args else ""))
        if target in where:
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)


def assert_chunks_intact(out: Path, reference: Path, chunks: list[int]) -> None:
    store, ref = RunStore(out), RunStore(reference)
    assert sorted(store.completed_chunks()) == chunks
    for chunk in chunks:
        assert pq.read_table(store.chunk_path(chunk)).equals(pq.read_table(ref.chunk_path(chunk)))
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


def resume_and_compare(images: Path, out: Path, reference: Path) -> None:
    run_audit(config(images, out), resume=True, progress=False)
    assert pq.read_table(out / "predictions.parquet").equals(
        pq.read_table(reference / "predictions.parquet")
    )
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        (reference / "summary.json").read_text()
    )


def test_disk_full_while_committing_a_chunk(images, reference, tmp_path, monkeypatch):
    out = tmp_path / "full"
    with monkeypatch.context() as patch:
        fail_when(patch, os, "replace", "chunk-000002.parquet", errno.ENOSPC)
        with pytest.raises(JaggyError) as caught:
            run_audit(config(images, out), progress=False)
    message = str(caught.value)
    assert "chunk-000002.parquet" in message and "No space left on device" in message
    assert "--resume" in message
    assert_chunks_intact(out, reference, [0, 1])
    assert not (out / "predictions.parquet").exists()
    resume_and_compare(images, out, reference)


def test_folder_turns_read_only_mid_run(images, reference, tmp_path, monkeypatch):
    out = tmp_path / "readonly"
    real = os.open

    def create(path, flags, *args, **kwargs):  # read-only once the first chunk is committed
        if flags & os.O_CREAT and RunStore(out).completed_chunks():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(path, flags, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", create)
        with pytest.raises(JaggyError, match="chunk-000001.parquet: Read-only file system"):
            run_audit(config(images, out), progress=False)
    assert_chunks_intact(out, reference, [0])
    resume_and_compare(images, out, reference)


def test_disk_full_while_merging_keeps_every_chunk(images, reference, tmp_path, monkeypatch):
    out = tmp_path / "merge"
    with monkeypatch.context() as patch:
        fail_when(patch, os, "replace", "predictions.parquet", errno.ENOSPC)
        with pytest.raises(JaggyError, match="predictions.parquet.*No space left"):
            run_audit(config(images, out), progress=False)
    assert_chunks_intact(out, reference, [0, 1, 2, 3])
    resume_and_compare(images, out, reference)
    sessions = json.loads((out / "run.json").read_text())["sessions"]
    assert sessions[-1]["chunks_by_rank"] == [0]  # nothing recomputed


def test_unwritable_output_folder_fails_before_any_work(images, tmp_path, monkeypatch):
    out = tmp_path / "never"
    fail_when(monkeypatch, tempfile, "mkstemp", str(out), errno.EROFS)
    probed = []
    monkeypatch.setattr(
        "jaggy.engine._runner.resolve_settings", lambda setup: probed.append(1) or {}
    )
    with pytest.raises(JaggyError, match="cannot write into the output folder.*Read-only"):
        run_audit(config(images, out), progress=False)
    assert not probed


def test_output_path_under_a_file_is_a_clear_error(images, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(JaggyError, match="cannot write into the output folder"):
        run_audit(config(images, blocker / "out"), progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_real_read_only_folder(images, reference, tmp_path):
    out = tmp_path / "chmod"
    run_audit(config(images, out), progress=False)
    for chunk in (2, 3):
        RunStore(out).chunk_path(chunk).unlink()
    (out / "parts").chmod(0o555)
    try:
        with pytest.raises(JaggyError, match="cannot write"):
            run_audit(config(images, out), resume=True, progress=False)
    finally:
        (out / "parts").chmod(0o755)
    assert_chunks_intact(out, reference, [0, 1])
