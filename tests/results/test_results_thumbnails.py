"""thumbnails/: what the audit writes equals what the report re-makes from the image files,
for every kind of protocol; resumed and two-rank runs write the same; the report reads them
and re-makes only what is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import videos
from conftest import write_synthetic_images
from jaggy.engine import AuditConfig, run_audit
from jaggy.engine._store import RunStore
from jaggy.report import write_report
from jaggy.report._run import RunFolder
from jaggy.report._views import ViewMaker
from jaggy.results import iter_sequences
from jaggy.results._thumbnails import (
    THUMBNAIL_IMAGES,
    read_thumbnails,
    shown_positions,
    thumbnail_path,
)

TESTS = Path(__file__).parent.parent
MODEL = "py:tinynets:tiny1000"  # input 32 px
PROTOCOLS = ["crop", "black", "mean", "inpaint", "scale", "study_crop", "study_black"]


def run_id(out: Path) -> str:
    return json.loads((out / "run.json").read_text())["run_id"]


def sequences(out: Path) -> list[tuple[int, str, str, int]]:
    """(image index, image id, protocol key, number of views) of every recorded sequence."""
    found = []
    for seq in iter_sequences(out / "predictions.parquet", optional=["image_id"]):
        for start, end in zip(seq.starts, seq.ends, strict=True):
            index, image_id = int(seq.image_index[start]), str(seq.image_id[start])
            found.append((index, image_id, seq.protocol, end - start))
    return found


def stored_thumbnails(out: Path) -> dict[int, dict]:
    record = run_id(out)
    return {
        index: read_thumbnails(out, index, image_id, record)
        for index, image_id, _, _ in sequences(out)
    }


def assert_same_as_remade(out: Path, protocols: int) -> int:
    """Every stored thumbnail equals the one the report re-makes from the file; returns how
    many sequences were compared."""
    maker = ViewMaker(RunFolder(out))
    compared = 0
    for index, image_id, key, n in sequences(out):
        stored = read_thumbnails(out, index, image_id, run_id(out))
        views = shown_positions(n)
        assert sorted(k for (k_key, k) in stored if k_key == key) == views, key
        remade = maker.thumbnails(image_id, key, views)
        assert not isinstance(remade, str), remade
        for k, pixels in zip(views, remade, strict=True):
            assert stored[(key, k)].tobytes() == pixels.tobytes(), (image_id, key, k)
        compared += 1
    assert compared >= protocols
    return compared


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("thumb-images") / "images"
    write_synthetic_images(folder, 3, side=44, seed=3)
    write_synthetic_images(folder / "small", 1, side=20, seed=4)  # smaller than the input
    return folder


def audit(data: Path, out: Path, *, resume: bool = False, **options):
    settings = dict(
        model=MODEL,
        data=str(data),
        protocols=PROTOCOLS,
        sizes=[16, 20],
        steps=8,
        batch_size=5,  # blocks and batches cut the sequences
        workers=0,
        threads=1,
        out=str(out),
    )
    settings.update(options)
    return run_audit(AuditConfig(**settings), resume=resume, progress=False)


def test_the_audit_writes_the_thumbnails_the_report_would_make(images, tmp_path):
    out = tmp_path / "run"
    audit(images, out)
    keys = {key for _, _, key, _ in sequences(out)}
    assert {"crop", "inpaint@16", "black@20", "mean@16", "scale", "study_crop"} <= keys
    assert_same_as_remade(out, len(keys))


def test_video_frames_as_the_report_would_make_them(tmp_path):
    frames = videos.camera_frames()
    videos.write_frame_folder(tmp_path / "clips" / "n02123045" / "pan", frames)
    out = tmp_path / "run"
    audit(tmp_path / "clips", out, protocols=["video"], sizes=None, steps=10)
    assert_same_as_remade(out, 1)


def test_only_the_first_images_get_thumbnails(tmp_path, monkeypatch):
    from jaggy.results import _thumbnails

    monkeypatch.setattr(_thumbnails, "THUMBNAIL_IMAGES", 2)
    write_synthetic_images(tmp_path / "images", 4, side=40, seed=1)
    out = tmp_path / "run"
    audit(tmp_path / "images", out, protocols=["crop"])
    written = sorted(p.name for p in (out / "thumbnails").iterdir())
    assert written == ["image-000000.npz", "image-000001.npz"]
    assert THUMBNAIL_IMAGES >= 16  # the demo's and the samples' images all get theirs


def test_worst_case_sets_get_none(tmp_path):
    write_synthetic_images(tmp_path / "images", 1, side=40, seed=6)
    out = tmp_path / "run"
    audit(tmp_path / "images", out, protocols=["crop"], worst_case=["circular"], exhaustive=True)
    assert "worst@circular" in {key for _, _, key, _ in sequences(out)}
    assert {key for key, _ in stored_thumbnails(out)[0]} == {"crop"}


def test_resumed_run_writes_the_same_bytes(images, tmp_path):
    whole = tmp_path / "whole"
    audit(images, whole, chunk_images=1)
    copy = tmp_path / "copy"
    shutil.copytree(whole, copy)
    # A run killed after image 1's thumbnails but before its chunk, and one before image 2's.
    RunStore(copy).chunk_path(1).unlink()
    RunStore(copy).chunk_path(2).unlink()
    thumbnail_path(copy, 2).unlink()
    half_written = copy / "thumbnails" / ".image-000002.npz.0123abcd.tmp"
    half_written.write_bytes(b"PK")
    (copy / "predictions.parquet").unlink()
    audit(images, copy, chunk_images=1, resume=True)
    assert not half_written.exists()  # tidied by the session that wrote the image again
    names = sorted(p.name for p in (whole / "thumbnails").iterdir())
    assert len(names) == 4
    for name in names:
        assert (copy / "thumbnails" / name).read_bytes() == (
            whole / "thumbnails" / name
        ).read_bytes()


def test_two_ranks_write_what_one_process_writes(tmp_path):
    write_synthetic_images(tmp_path / "images", 4, side=40, seed=2)
    two = tmp_path / "two"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent / "src")])
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "jaggy", "audit", MODEL, str(tmp_path / "images")]
    command += ["--protocol", "crop", "--protocol", "inpaint", "--size", "16", "--steps", "4"]
    command += ["--chunk-images", "1", "--batch-size", "4", "--out", str(two), "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {RunStore(two).chunk_info(c)["rank"] for c in range(4)} == {0, 1}
    one = tmp_path / "one"
    audit(
        tmp_path / "images",
        one,
        protocols=["crop", "inpaint"],
        sizes=[16],
        steps=4,
        chunk_images=1,
        batch_size=4,
    )
    a, b = stored_thumbnails(two), stored_thumbnails(one)
    assert sorted(a) == sorted(b) == [0, 1, 2, 3]
    for index in a:
        assert sorted(a[index]) == sorted(b[index]) and a[index]
        for key in a[index]:
            assert a[index][key].tobytes() == b[index][key].tobytes()


def test_the_report_reads_them_and_remakes_what_is_missing(images, tmp_path):
    out = tmp_path / "run"
    audit(images, out, protocols=["crop", "inpaint"], sizes=[16])
    with_stored = write_report([out], tmp_path / "a.html").read_bytes()
    kept = tmp_path / "kept"
    shutil.move(out / "thumbnails", kept)
    remade = write_report([out], tmp_path / "b.html").read_bytes()
    assert with_stored == remade  # the same page, whichever way the pictures came
    # Only part of them stored (an image beyond the first ones): the rest is re-made.
    (out / "thumbnails").mkdir()
    shutil.copy(kept / "image-000001.npz", out / "thumbnails")
    assert write_report([out], tmp_path / "c.html").read_bytes() == remade
    # The image files moved away: the stored thumbnails are still shown.
    shutil.rmtree(out / "thumbnails")
    shutil.move(kept, out / "thumbnails")
    moved = tmp_path / "moved"
    shutil.move(images, moved)
    try:
        assert write_report([out], tmp_path / "d.html").read_bytes() == with_stored
    finally:
        shutil.move(moved, images)


def test_another_runs_or_a_foreign_file_is_not_used_nor_overwritten(images, tmp_path):
    out = tmp_path / "run"
    audit(images, out, protocols=["crop"])
    path = thumbnail_path(out, 0)
    image_id = sequences(out)[0][1]
    assert read_thumbnails(out, 0, image_id, run_id(out))
    assert read_thumbnails(out, 0, image_id, "another-run") == {}
    assert read_thumbnails(out, 0, "another-image", run_id(out)) == {}
    # A file of that name that jaggy did not write stays as it is after a fresh run there.
    path.write_bytes(b"not a thumbnail file")
    audit(images, out, protocols=["crop"], overwrite=True)
    assert path.read_bytes() == b"not a thumbnail file"
    assert read_thumbnails(out, 0, image_id, run_id(out)) == {}
    assert np.load(thumbnail_path(out, 1))["pixels"].shape[1:] == (64, 64, 3)


def test_starting_afresh_deletes_the_previous_runs_thumbnails_only(images, tmp_path):
    out = tmp_path / "run"
    audit(images, out, protocols=["crop"])
    written = sorted(p.name for p in (out / "thumbnails").iterdir())
    assert len(written) == len(sequences(out)) >= 2
    foreign = out / "thumbnails" / "notes.txt"
    foreign.write_text("mine")
    fewer = tmp_path / "one"
    fewer.mkdir()
    shutil.copy(next(p for p in sorted(images.iterdir()) if p.is_file()), fewer)
    audit(fewer, out, protocols=["crop"], overwrite=True)
    # The earlier run's files of images 1.. are gone; the new run wrote image 0's afresh.
    left = sorted(p.name for p in (out / "thumbnails").iterdir())
    assert left == ["image-000000.npz", "notes.txt"]
    assert foreign.read_text() == "mine"
    assert read_thumbnails(out, 0, sequences(out)[0][1], run_id(out))


def test_a_thumbnail_is_a_lanczos_shrink_of_the_view_within_a_level():
    """The thumbnail of a 224 px view of a photo: PIL's Lanczos after a 2x2 box average
    (`REDUCING_GAP`), within about one level of 255 of a Lanczos shrink of the whole view,
    from either layout of the pixels."""
    from PIL import Image

    from jaggy.data import sample_paths
    from jaggy.results._thumbnails import shrink, shrink_planes

    for path in sample_paths().values():
        with Image.open(path) as image:
            view = np.asarray(image.convert("RGB").resize((224, 224), Image.Resampling.BICUBIC))
        exact = np.asarray(
            Image.fromarray(view).resize((64, 64), Image.Resampling.LANCZOS), dtype=float
        )
        thumbnail = shrink(view)
        assert thumbnail.shape == (64, 64, 3) and thumbnail.dtype == np.uint8
        assert np.array_equal(
            shrink_planes(np.ascontiguousarray(view.transpose(2, 0, 1))), thumbnail
        )
        difference = np.abs(thumbnail - exact)
        assert difference.mean() < 1.5 and difference.max() <= 32, path


def test_file_names_are_those_the_writer_gives():
    from jaggy.results._thumbnails import _is_file_name

    assert thumbnail_path("run", 7).name == "image-000007.npz"
    assert _is_file_name("image-000007.npz") and _is_file_name("image-1234567.npz")
    for name in ("image-7.npz", "image-000007.npz.tmp", ".image-000007.npz", "image-٠٠٠٠٠٧.npz"):
        assert not _is_file_name(name), name
