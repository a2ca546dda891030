"""Outputs go only to regular files (devices, FIFOs and folders refused, links written
through); report paths that cannot be written, damaged result files and unfinished runs give
one line and exit 2, and leave every file as it was."""

from __future__ import annotations

import errno
import json
import os
import stat
import sys

import pytest
from misuse_conftest import TINY_AUDIT, run_jaggy, snapshot

from conftest import write_synthetic_images


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One finished tiny audit, copied by the tests that change it."""
    root = tmp_path_factory.mktemp("run")
    write_synthetic_images(root / "imgs", 2, side=40)
    from jaggy.cli import main

    code = main(
        [
            "audit",
            "py:tinynets:tiny",
            str(root / "imgs"),
            "--protocol",
            "crop",
            "--out",
            str(root / "out"),
            "--chunk-images",
            "1",
            *TINY_AUDIT,
        ]
    )
    assert code == 0
    return root / "out"


def report(capsys, run, out):
    return run_jaggy(capsys, "report", run, "--out", out)


def one_line(code, err, message):
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_a_device_is_never_replaced_by_a_file(capsys, finished_run):
    code, err = report(capsys, finished_run, "/dev/null")
    one_line(
        code,
        err,
        "'/dev/null' is a character device; jaggy writes its outputs only to regular files",
    )
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_refused(capsys, finished_run, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, err = report(capsys, finished_run, fifo)
    one_line(code, err, "is a FIFO (named pipe); jaggy writes its outputs only to regular files")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_folder_as_report_path_is_refused(capsys, finished_run, tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "old.html").write_text("mine")
    before = snapshot(tmp_path)
    code, err = report(capsys, finished_run, tmp_path / "reports")
    one_line(
        code,
        err,
        f"'{tmp_path / 'reports'}' is a folder; give the path of a file to "
        f"write, such as '{tmp_path / 'reports' / 'report.html'}'",
    )
    assert snapshot(tmp_path) == before


def test_a_link_is_written_through_to_its_file(capsys, finished_run, tmp_path):
    (tmp_path / "site").mkdir()
    target = tmp_path / "site" / "report.html"
    target.write_text("old report")
    link = tmp_path / "latest.html"
    link.symlink_to(target)
    dangling = tmp_path / "next.html"
    dangling.symlink_to(tmp_path / "site" / "next.html")
    for path in (link, dangling):
        code, err = report(capsys, finished_run, path)
        assert code == 0, err
        assert path.is_symlink()  # the link stays a link ...
        assert path.resolve().read_text().startswith("<!DOCTYPE html>")  # ... to the new file
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["next.html", "report.html"]


def test_an_unwritable_report_path(capsys, finished_run, tmp_path, monkeypatch):
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):  # root ignores modes: simulate them
        if flags & os.O_CREAT and ".r.html." in str(path):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    code, err = report(capsys, finished_run, tmp_path / "r.html")
    one_line(
        code,
        err,
        f"cannot write {tmp_path / 'r.html'}: Permission denied; choose a "
        "writable path for --out (the result folders are unchanged)",
    )
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file")
    monkeypatch.undo()
    code, err = report(capsys, finished_run, blocker / "r.html")
    one_line(code, err, f"cannot create the folder of '{blocker / 'r.html'}'")
    assert blocker.read_text() == "a file"


def test_a_full_disk_keeps_the_previous_report(capsys, finished_run, tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    out.write_text("yesterday's report")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code, err = report(capsys, finished_run, out)
    one_line(code, err, f"cannot write {out}: No space left on device; choose a writable path")
    assert out.read_text() == "yesterday's report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary left


def test_audit_report_into_a_folder_after_the_work(capsys, tmp_path):
    write_synthetic_images(tmp_path / "imgs", 2, side=40)
    out = tmp_path / "out"
    (out / "report.html").mkdir(parents=True)
    code, err = run_jaggy(
        capsys,
        "audit",
        "py:tinynets:tiny",
        tmp_path / "imgs",
        "--protocol",
        "crop",
        "--out",
        out,
        "--report",
        "--overwrite",
        *TINY_AUDIT,
    )
    one_line(
        code,
        err,
        f"the results are in {out}/, but not the report: '{out / 'report.html'}' is a folder",
    )
    assert json.loads((out / "summary.json").read_text())["protocols"]["crop"]


def copy_run(run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "summary.json",
            "[1, 2, 3]",
            "summary.json' holds a JSON list, not the object jaggy writes",
        ),
        ("manifest.json", '"text"', "manifest.json' holds a JSON str, not the object jaggy"),
        ("summary.json", '{"protocols": ', "summary.json': Expecting value: line 1 column 15"),
    ],
    ids=["summary-list", "manifest-string", "summary-cut"],
)
def test_damaged_result_files(capsys, finished_run, tmp_path, name, content, message):
    run = copy_run(finished_run, tmp_path)
    (run / name).write_text(content)
    before = snapshot(tmp_path)
    code, err = report(capsys, run, tmp_path / "r.html")
    one_line(code, err, message)
    assert snapshot(tmp_path) == before


def test_report_on_an_unfinished_run_says_how_far_and_how_to_finish(
    capsys, finished_run, tmp_path, monkeypatch
):
    run = copy_run(finished_run, tmp_path)
    record = json.loads((run / "run.json").read_text())
    record["sessions"][-1]["command"] = [
        "/usr/bin/jaggy",
        "audit",
        "py:tinynets:tiny",
        "imgs",
        "--out",
        str(run),
    ]
    (run / "run.json").write_text(json.dumps(record))
    for name in ("summary.json", "manifest.json", "predictions.parquet"):
        (run / name).unlink()
    (run / "parts" / "chunk-000001.parquet").unlink()  # interrupted after one of two chunks
    before = snapshot(tmp_path)
    code, err = report(capsys, run, tmp_path / "r.html")
    one_line(
        code,
        err,
        f"'{run}' holds an unfinished audit: 1 of 2 chunk(s) (up to 1 image(s), "
        "1 per chunk) are done and it has no results yet; finish it with: jaggy "
        f"audit py:tinynets:tiny imgs --out {run} --resume (then run jaggy "
        "report again)",
    )
    assert snapshot(tmp_path) == before


HOLD_LOCK = """
import sys, time
sys.path.insert(0, sys.argv[1])
from jaggy.engine._lock import RunLock
RunLock(sys.argv[2], "audit").acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_report_on_a_run_still_being_written_names_its_pid(capsys, finished_run, tmp_path):
    import signal
    import subprocess
    from pathlib import Path

    run = copy_run(finished_run, tmp_path)
    (run / "summary.json").unlink()
    src = Path(__file__).resolve().parents[2] / "src"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(src), str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = report(capsys, run, tmp_path / "r.html")
        one_line(
            code,
            err,
            f"'{run}' holds an audit that is still running: 2 of 2 chunk(s) (up "
            f"to 2 image(s), 1 per chunk) done so far; '{run}' is being written "
            f"by another jaggy audit (pid {holder.pid})",
        )
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert not (tmp_path / "r.html").exists()
