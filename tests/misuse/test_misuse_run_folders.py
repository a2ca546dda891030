"""A run folder belongs to one run: locked while a run writes, foreign folders and other runs'
chunks refused unless --overwrite, nothing jaggy did not write deleted, and a resume refusal
that names the images that changed. Each case: the message, exit 2, the user's files intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from misuse_conftest import TINY_AUDIT, run_jaggy, snapshot

from conftest import write_synthetic_images

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def images(tmp_path):
    write_synthetic_images(tmp_path / "imgs", 3, side=40)
    return tmp_path / "imgs"


def audit(capsys, images, out, *extra, model="py:tinynets:tiny"):
    return run_jaggy(
        capsys,
        "audit",
        model,
        images,
        "--protocol",
        "crop",
        "--chunk-images",
        "1",
        "--out",
        out,
        *TINY_AUDIT,
        *extra,
    )


def refused(code, err, message):
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err


def test_chunks_of_another_run_without_run_json_are_not_reused(capsys, images, tmp_path):
    out = tmp_path / "out"
    assert audit(capsys, images, out, model="py:tinynets:tiny1000")[0] == 0
    (out / "run.json").unlink()  # what is left of another run
    before = snapshot(out)
    code, err = audit(capsys, images, out)
    refused(
        code,
        err,
        "holds 3 chunk file(s) of another run in parts/ but no run.json; pass "
        "--overwrite to start afresh there",
    )
    assert snapshot(out) == before
    code, err = audit(capsys, images, out, "--overwrite")
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["spec"] == "py:tinynets:tiny"
    top1 = pq.read_table(out / "predictions.parquet", columns=["top1"])["top1"].to_pylist()
    assert max(top1) < 10  # the 10-class model's rows, none of the 1000-class model's


HOLD_LOCK = """
import sys, time
sys.path.insert(0, sys.argv[1])
from jaggy.engine._lock import RunLock
RunLock(sys.argv[2], "audit").acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_folder_being_written_is_refused_naming_the_pid(capsys, images, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(SRC), str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = audit(capsys, images, out)
        refused(
            code,
            err,
            f"'{out}' is being written by another jaggy audit (pid {holder.pid}); "
            "wait for it to finish, or choose another --out",
        )
        assert not (out / "run.json").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # a killed run leaves no stale lock
        holder.wait()
    code, err = audit(capsys, images, out)
    assert code == 0, err


def test_two_runs_in_one_process_are_refused(images, tmp_path):
    from jaggy.engine._lock import RunLock
    from jaggy.errors import ArgumentError

    with RunLock(tmp_path, "audit"):
        with pytest.raises(ArgumentError, match=f"pid {os.getpid()}, this process"):
            RunLock(tmp_path, "audit").acquire()
    RunLock(tmp_path, "audit").acquire().release()  # free again


def user_folder(folder: Path) -> Path:
    folder.mkdir()
    for name in ("summary.json", "manifest.json", "predictions.parquet", "report.html"):
        (folder / name).write_text(f"the user's own {name}")
    (folder / ".summary.json.draft.tmp").write_text("the user's draft")
    (folder / ".manifest.json.x7Yq2_ab.tmp").write_text("looks like jaggy's, is the user's")
    (folder / "notes.txt").write_text("notes")
    return folder


def test_an_unrelated_folder_is_not_clobbered(capsys, images, tmp_path):
    out = user_folder(tmp_path / "mine")
    before = snapshot(out)
    code, err = audit(capsys, images, out)
    refused(
        code,
        err,
        f"'{out}' is not empty and holds no jaggy run (manifest.json, notes.txt, "
        "predictions.parquet, report.html and 1 more); choose a new or empty "
        "--out, or pass --overwrite",
    )
    assert snapshot(out) == before
    code, err = audit(capsys, images, out, "--overwrite")
    assert code == 0, err
    after = snapshot(out)
    for kept in (
        "notes.txt",
        ".summary.json.draft.tmp",
        ".manifest.json.x7Yq2_ab.tmp",
        "report.html",
    ):
        assert after[kept] == before[kept], kept  # nothing jaggy did not write is deleted
    assert json.loads((out / "summary.json").read_text())["protocols"]["crop"]


def test_an_existing_run_needs_resume_or_overwrite(capsys, images, tmp_path):
    out = tmp_path / "out"
    assert audit(capsys, images, out)[0] == 0
    before = snapshot(out)
    code, err = audit(capsys, images, out)
    refused(
        code,
        err,
        "already holds a run; pass --resume to continue it, --overwrite to start "
        "afresh, or choose another --out",
    )
    code, err = audit(capsys, images, out, "--resume", "--overwrite")
    refused(code, err, "--resume continues a run and --overwrite starts afresh; pick one")
    assert snapshot(out) == before
    code, err = audit(capsys, images, out, "--overwrite", "--seed", "3")
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["identity"]["seed"] == 3


def test_resume_names_images_that_changed_appeared_or_disappeared(capsys, images, tmp_path):
    out = tmp_path / "out"
    assert audit(capsys, images, out)[0] == 0
    before = snapshot(out)
    write_synthetic_images(tmp_path / "other", 3, side=44, seed=9)
    (images / "img001.png").write_bytes((tmp_path / "other" / "img001.png").read_bytes())
    (images / "img002.png").unlink()
    (tmp_path / "other" / "img000.png").rename(images / "new.png")
    code, err = audit(capsys, images, out, "--resume")
    refused(code, err, "  images: 1 changed (img001.png: size ")
    assert "; 1 appeared (new.png); 1 disappeared (img002.png)" in err
    assert "rerun with the original arguments and images, or start afresh with --overwrite" in err
    assert snapshot(out) == before


def test_an_image_replaced_by_one_of_the_same_size_is_noticed(capsys, images, tmp_path):
    out = tmp_path / "out"
    assert audit(capsys, images, out)[0] == 0
    path = images / "img000.png"
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # same size, other bytes
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    code, err = audit(capsys, images, out, "--resume")
    refused(code, err, "  images: 1 changed (img000.png: modified)")


def test_content_hashes_see_through_a_touch_but_not_a_change(capsys, images, tmp_path):
    out = tmp_path / "out"
    assert audit(capsys, images, out, "--hash-images")[0] == 0
    path = images / "img000.png"
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 5 * 10**9))  # touched, same bytes
    code, err = audit(capsys, images, out, "--hash-images", "--resume")
    assert code == 0, err
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and time, other bytes
    code, err = audit(capsys, images, out, "--hash-images", "--resume")
    refused(code, err, "  images: 1 changed (img000.png: content changed)")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda out: (out / "run.json").write_text("{not json"),
            "run.json' is damaged (JSONDecodeError: ",
        ),
        (
            lambda out: (out / "run.json").write_text("[1, 2]"),
            "run.json' is damaged (not the record of a jaggy run); pass --overwrite",
        ),
        (
            lambda out: (out / "parts" / "chunk-000001.parquet").write_bytes(b"PAR1 garbage"),
            "1 chunk file(s) in '{out}' are damaged or not jaggy's (parts/chunk-000001.parquet); "
            "delete them and rerun with --resume",
        ),
    ],
    ids=["run-json-garbage", "run-json-list", "chunk-garbage"],
)
def test_damaged_run_files_are_one_line_errors(capsys, images, tmp_path, damage, message):
    out = tmp_path / "out"
    assert audit(capsys, images, out)[0] == 0
    damage(out)
    before = snapshot(out)
    code, err = audit(capsys, images, out, "--resume")
    refused(code, err, message.format(out=out))
    assert len(err.strip().splitlines()) == 1
    assert snapshot(out) == before
