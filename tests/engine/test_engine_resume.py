"""Resume: SIGKILL a real `python -m jaggy audit` at random moments, resume it, and get exactly
the rows and summary of an uninterrupted run, with no committed chunk computed twice.

Also: a resume with other arguments is refused and shows the difference; a finished run
resumes to the same result; a run killed before its run.json existed starts afresh.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from conftest import write_synthetic_images
from jaggy.cli import main as jaggy_main
from jaggy.engine import AuditConfig, run_audit
from tinynets import TinyCNN

HERE = Path(__file__).parent
REPO = HERE.parent.parent
SLOW_SPEC = f"py:{Path(__file__).stem}:slow_tiny"
N_IMAGES, CHUNK, BATCH = 16, 2, 5  # 8 chunks; batches of 5 cut across images
SECONDS_PER_BATCH = 0.02


class SlowTiny(TinyCNN):
    """TinyCNN that takes a fixed extra time per forward call, so that a run lasts long
    enough to be killed in the middle of a chunk."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(SECONDS_PER_BATCH)
        return super().forward(x)


def slow_tiny() -> torch.nn.Module:
    """`py:test_engine_resume:slow_tiny` (10 classes, 32 px input)."""
    return SlowTiny()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("resume") / "images"
    write_synthetic_images(folder, N_IMAGES, side=40, seed=3)
    return folder


def config(folder: Path, out: Path, **changes) -> AuditConfig:
    base = dict(
        model=SLOW_SPEC,
        data=str(folder),
        protocols=["crop", "black"],
        steps=4,
        sizes=[16],
        batch_size=BATCH,
        chunk_images=CHUNK,
        out=str(out),
        workers=0,
    )
    return AuditConfig(**{**base, **changes})


def cli_args(images: Path, out: Path) -> list[str]:
    return [
        "audit",
        SLOW_SPEC,
        str(images),
        "--protocol",
        "crop",
        "--protocol",
        "black",
        "--steps",
        "4",
        "--size",
        "16",
        "--batch-size",
        str(BATCH),
        "--chunk-images",
        str(CHUNK),
        "--out",
        str(out),
        "--no-progress",
    ]


@pytest.fixture(scope="module")
def reference(images: Path, tmp_path_factory) -> Path:
    """An uninterrupted run (in this process, 1 CPU thread like the subprocesses)."""
    out = tmp_path_factory.mktemp("resume") / "reference"
    run_audit(config(images, out), progress=False)
    return out


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), str(REPO / "src")])
    env["OMP_NUM_THREADS"] = "1"  # the thread count of this test process (conftest)
    return env


def start_audit(images: Path, out: Path, resume: bool = False) -> subprocess.Popen:
    args = [sys.executable, "-m", "jaggy", *cli_args(images, out)]
    if resume:
        args.append("--resume")
    return subprocess.Popen(
        args,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill takes its workers too
    )


def committed(out: Path) -> int:
    parts = out / "parts"
    return len(list(parts.glob("chunk-*.parquet"))) if parts.is_dir() else 0


def kill_when(process: subprocess.Popen, ready, extra: float) -> None:
    """SIGKILL `process` `extra` seconds after `ready()` becomes true."""
    deadline = time.monotonic() + 60
    while not ready() and process.poll() is None:
        assert time.monotonic() < deadline, "the audit made no progress"
        time.sleep(0.002)
    time.sleep(extra)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def kill_after(process: subprocess.Popen, out: Path, chunks: int, extra: float) -> int:
    """SIGKILL `process` `extra` seconds after `chunks` chunks are committed. Returns the
    chunks committed at its death."""
    kill_when(process, lambda: committed(out) >= chunks, extra)
    return committed(out)


def assert_same_results(out: Path, reference: Path) -> None:
    got = pq.read_table(out / "predictions.parquet")
    want = pq.read_table(reference / "predictions.parquet")
    assert got.num_rows == want.num_rows == N_IMAGES * 8
    keys = list(
        zip(*(got.column(c).to_pylist() for c in ("image_id", "protocol", "view")), strict=True)
    )
    assert len(set(keys)) == len(keys), "duplicate rows"
    for name in got.column_names:  # row by row, exact: ids and probabilities alike
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        (reference / "summary.json").read_text()
    )
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


def sessions(out: Path) -> list[dict]:
    return json.loads((out / "run.json").read_text())["sessions"]


def test_sigkill_at_random_moments_then_resume(images, reference, tmp_path):
    rng = random.Random(1234)
    n_chunks = N_IMAGES // CHUNK
    seconds_per_chunk = SECONDS_PER_BATCH * 4  # 16 views per chunk in batches of 5
    # Moments: during start-up (before run.json may exist), inside the first chunk, and
    # inside a random later chunk.
    k = rng.randint(1, n_chunks - 3)
    moments = [
        ("start-up", lambda out: True, rng.uniform(0.2, 1.0)),
        ("first chunk", lambda out: (out / "run.json").is_file(), rng.uniform(0, 0.05)),
        (f"chunk {k}", lambda out: committed(out) >= k, rng.uniform(0, seconds_per_chunk)),
    ]
    for name, ready, extra in moments:
        out = tmp_path / name.replace(" ", "-")
        kill_when(start_audit(images, out), lambda out=out, ready=ready: ready(out), extra)
        done_at_kill = committed(out)
        assert done_at_kill < n_chunks, f"{name}: the run ended before the kill"
        started = (out / "run.json").is_file()
        run_audit(config(images, out), resume=True, progress=False)
        assert_same_results(out, reference)
        record = sessions(out)
        if started:
            killed, resumed = record
            # What the killed session committed is kept, not recomputed ...
            assert killed["chunks"] == done_at_kill and killed["status"] == "interrupted"
            # ... and the resumed session computed exactly the missing chunks.
            assert resumed["chunks_by_rank"] == [n_chunks - done_at_kill]
        else:  # killed before run.json existed: the resume started afresh
            assert done_at_kill == 0 and len(record) == 1
            assert record[0]["chunks"] == n_chunks


def test_a_killed_resume_resumes_again(images, reference, tmp_path):
    rng = random.Random(99)
    n_chunks = N_IMAGES // CHUNK
    out = tmp_path / "twice"
    first = kill_after(start_audit(images, out), out, rng.randint(1, 3), rng.uniform(0, 0.08))
    resumed = start_audit(images, out, resume=True)
    second = kill_after(resumed, out, first + rng.randint(1, 3), rng.uniform(0, 0.08))
    assert first < second < n_chunks
    run_audit(config(images, out), resume=True, progress=False)
    assert_same_results(out, reference)
    record = sessions(out)
    assert [s["status"] for s in record] == ["interrupted", "interrupted", "finished"]
    assert record[0]["chunks"] == first
    assert record[0]["chunks"] + record[1]["chunks"] == second
    assert record[2]["chunks_by_rank"] == [n_chunks - second]


def test_resume_of_a_finished_run_computes_nothing(images, reference, tmp_path):
    out = tmp_path / "finished"
    run_audit(config(images, out), progress=False)
    result = run_audit(config(images, out), resume=True, progress=False)
    assert_same_results(out, reference)
    assert [s["chunks_by_rank"] for s in sessions(out)] == [[N_IMAGES // CHUNK], [0]]
    assert result.manifest.sessions[-1]["status"] == "finished"


def test_resume_with_changed_arguments_is_refused_with_the_difference(images, tmp_path, capsys):
    out = tmp_path / "changed"
    run_audit(config(images, out, images=4), progress=False)
    before = sorted(p.name for p in (out / "parts").iterdir())
    args = cli_args(images, out) + ["--images", "4", "--resume"]
    args[args.index("--steps") + 1] = "5"
    args[args.index("--batch-size") + 1] = "3"
    assert jaggy_main(args) == 2
    err = capsys.readouterr().err
    assert "different arguments" in err
    assert "steps: run has 4, now 5" in err
    assert "batch_size: run has 5, now 3" in err
    assert "images_digest" not in err  # only what differs is listed
    assert sorted(p.name for p in (out / "parts").iterdir()) == before  # nothing touched


def test_new_run_into_an_existing_run_is_refused(images, tmp_path, capsys):
    out = tmp_path / "existing"
    run_audit(config(images, out, images=2), progress=False)
    assert jaggy_main(cli_args(images, out) + ["--images", "2"]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_resume_after_a_kill_before_run_json_starts_afresh(images, reference, tmp_path):
    out = tmp_path / "early"
    (out / "parts").mkdir(parents=True)  # what a kill right after mkdir leaves
    (out / ".run.json.k3j9x_2a.tmp").write_text("{half")  # mkstemp: 8 random characters
    run_audit(config(images, out), resume=True, progress=False)
    assert_same_results(out, reference)


def test_resume_into_a_foreign_folder_is_refused(images, tmp_path):
    from jaggy.errors import ArgumentError

    out = tmp_path / "foreign"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ArgumentError, match="holds no jaggy run"):
        run_audit(config(images, out), resume=True, progress=False)


def test_sigkill_while_the_automatic_batch_size_is_probed_then_resume(images, tmp_path):
    """`--batch-size auto` probes on the run's own first batches; a SIGKILL before its
    choice is recorded leaves no chunk committed, and the resumed run probes again."""
    out = tmp_path / "auto"
    args = [sys.executable, "-m", "jaggy", *cli_args(images, out)]
    args[args.index("--batch-size") + 1] = "auto"
    process = subprocess.Popen(
        args,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    # the probe needs 6 calls of SECONDS_PER_BATCH at least, from the moment run.json exists
    kill_when(process, lambda: (out / "run.json").is_file(), 0.02)
    record = json.loads((out / "run.json").read_text())
    assert record["autotune"]["status"] == "pending", "the kill should fall inside the probe"
    assert committed(out) == 0
    resumed = run_audit(config(images, out, batch_size="auto"), resume=True, progress=False)
    tuned = resumed.manifest.autotune
    assert tuned["on_run_views"] is True and tuned.get("status") is None
    killed, again = sessions(out)
    assert killed["status"] == "interrupted" and killed["chunks"] == 0
    assert again["chunks_by_rank"] == [N_IMAGES // CHUNK]
    fixed = run_audit(
        config(
            images,
            tmp_path / "fixed",
            batch_size=tuned["batch_size"],
            memory_format=tuned["memory_format"],
        ),
        progress=False,
    )
    got, want = (pq.read_table(o / "predictions.parquet") for o in (out, fixed.out))
    assert got.num_rows == want.num_rows == N_IMAGES * 8
    for name in ("image_id", "protocol", "view", "top1", "ref_class"):
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    torch.testing.assert_close(
        torch.tensor(got.column("top5_probs").to_pylist()),
        torch.tensor(want.column("top5_probs").to_pylist()),
        rtol=1e-4,
        atol=1e-6,
    )


def test_a_run_recorded_before_a_setting_existed_resumes_at_its_default(images, tmp_path, capsys):
    """run.json of an earlier version lacks settings added since (here `graph`): the run
    resumes when they are left at their defaults, and is refused when one is changed."""
    out = tmp_path / "older"
    run_audit(config(images, out, images=4), progress=False)
    record = json.loads((out / "run.json").read_text())
    assert record["identity"].pop("graph") == "auto"
    (out / "run.json").write_text(json.dumps(record))
    result = run_audit(config(images, out, images=4), resume=True, progress=False)
    assert result.manifest.sessions[-1]["status"] == "finished"
    args = cli_args(images, out) + ["--images", "4", "--resume", "--graph", "eager"]
    assert jaggy_main(args) == 2
    assert "graph: run has 'auto', now 'eager'" in capsys.readouterr().err
