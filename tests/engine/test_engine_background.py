"""The engine's background thread work: images decoded ahead and thumbnails written off the
forward's path change no row and no file, keep their order, and never let a chunk be
committed before its images' thumbnails are written."""

from __future__ import annotations

import threading
import time

import pyarrow.parquet as pq
import pytest

import jaggy.engine._runner as runner
from conftest import write_synthetic_images
from jaggy.engine import AuditConfig, run_audit
from jaggy.engine._loading import decode_ahead, iterate_decoded
from jaggy.engine._store import RunStore
from jaggy.results import _thumbnails
from jaggy.results._thumbnails import ThumbnailWriter, thumbnail_path

PROTOCOLS = ["crop", "black", "study_crop"]


def audit(folder, out, **options):
    settings = dict(
        model="py:tinynets:tiny1000",
        data=str(folder),
        protocols=PROTOCOLS,
        steps=4,
        sizes=[20],
        batch_size=4,
        workers=0,
        chunk_images=2,
        out=str(out),
    )
    settings.update(options)
    return run_audit(AuditConfig(**settings), progress=False)


class Slow:
    """A dataset whose items take a while, recording which thread made each."""

    def __init__(self, n: int, seconds: float = 0.01):
        self.n, self.seconds = n, seconds
        self.made: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        time.sleep(self.seconds)
        self.made.append((i, threading.get_ident()))
        return i * i


def test_decode_ahead_gives_every_item_in_order_from_another_thread():
    dataset = Slow(7)
    assert list(decode_ahead(dataset, ahead=2)) == [i * i for i in range(7)]
    assert sorted(i for i, _ in dataset.made) == list(range(7))
    assert {t for _, t in dataset.made} != {threading.get_ident()}
    assert list(decode_ahead(Slow(0))) == []


def test_closing_early_stops_the_decoding_thread():
    dataset = Slow(50, seconds=0.02)
    stream = decode_ahead(dataset, ahead=2)
    assert next(stream) == 0
    stream.close()
    made = len(dataset.made)
    assert made <= 4  # the first, at most `ahead` more, and the one running at the close
    time.sleep(0.1)
    assert len(dataset.made) == made
    assert not [t for t in threading.enumerate() if t.name.startswith("jaggy-decode")]


def test_inline_decoding_stays_inline():
    dataset = Slow(3)
    assert list(iterate_decoded(dataset, 0)) == [0, 1, 4]
    assert {t for _, t in dataset.made} == {threading.get_ident()}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    write_synthetic_images(folder, 5, side=40, seed=3)
    return folder


def test_rows_and_thumbnails_are_those_of_inline_work(images, tmp_path, monkeypatch):
    ahead = tmp_path / "ahead"
    audit(images, ahead)
    monkeypatch.setattr(runner, "DECODE_AHEAD", 0)
    monkeypatch.setattr(ThumbnailWriter, "write", lambda self, shown: shown.write())
    inline = tmp_path / "inline"
    audit(images, inline)
    a = pq.read_table(ahead / "predictions.parquet")
    b = pq.read_table(inline / "predictions.parquet")
    assert a.num_rows == 5 * (4 + 4 + 9)
    assert a.equals(b)
    names = sorted(p.name for p in (ahead / "thumbnails").iterdir())
    assert names == sorted(p.name for p in (inline / "thumbnails").iterdir())
    assert len(names) == 5
    for name in names:
        ours = _thumbnails._read_file(ahead / "thumbnails" / name)[1]
        theirs = _thumbnails._read_file(inline / "thumbnails" / name)[1]
        assert ours.keys() == theirs.keys()
        assert all((ours[k] == theirs[k]).all() for k in ours)


def test_a_chunk_is_committed_after_its_thumbnails(images, tmp_path, monkeypatch):
    """The thumbnail thread is slowed down: every committed chunk must still find its images'
    files written (a SIGKILL after a commit then leaves nothing of that chunk to redo)."""
    write = _thumbnails.ImageThumbnails.write

    def slow_write(self):
        time.sleep(0.2)
        write(self)

    monkeypatch.setattr(_thumbnails.ImageThumbnails, "write", slow_write)
    out = tmp_path / "run"
    commit = RunStore.write_chunk
    missing = []

    def checked_commit(self, chunk, table, info):
        for index in set(table.column("image_index").to_pylist()):
            if not thumbnail_path(out, index).is_file():
                missing.append((chunk, index))
        return commit(self, chunk, table, info)

    monkeypatch.setattr(RunStore, "write_chunk", checked_commit)
    audit(images, out)
    assert missing == []
    assert len(list((out / "thumbnails").glob("*.npz"))) == 5
    assert not [t for t in threading.enumerate() if t.name.startswith("jaggy-thumbnails")]
