"""torchrun: two CPU ranks (gloo) shard the chunks, rank 0 merges; the result equals a
single-process run row for row. Rank 0 alone probes the batch size and every rank uses it;
an argument error stops every rank (no rank waits forever)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import write_synthetic_images
from jaggy.engine import AuditConfig, run_audit
from jaggy.engine._distributed import Ranks, split_chunks
from jaggy.engine._store import RunStore
from jaggy.results import read_features

TESTS = Path(__file__).parent.parent
REPO = TESTS.parent
N_IMAGES, CHUNK = 10, 2  # 5 chunks: rank 0 gets 0, 2, 4; rank 1 gets 1, 3


def torchrun(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO / "src")])
    env["OMP_NUM_THREADS"] = "1"  # torchrun's own default with several ranks
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "jaggy", *args]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def audit_args(images: Path, out: Path) -> list[str]:
    return [
        "audit",
        "py:tinynets:tiny1000",
        str(images),
        "--protocol",
        "crop",
        "--protocol",
        "black",
        "--steps",
        "3",
        "--size",
        "16",
        "--chunk-images",
        str(CHUNK),
        "--out",
        str(out),
        "--no-progress",
        "--measure",  # features too: their vectors shard and merge with the rows
        "logits,features",
        "--save-features",
    ]


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ranks")
    images = root / "images"
    write_synthetic_images(images, N_IMAGES, side=40, seed=5)
    out = root / "two"
    done = torchrun(audit_args(images, out))  # --batch-size auto, the default
    assert done.returncode == 0, done.stderr[-3000:]
    return images, out


def test_two_ranks_equal_one_process_row_by_row(two_rank_run, tmp_path):
    images, out = two_rank_run
    record = json.loads((out / "run.json").read_text())
    # Rank 0 probed; every chunk, whichever rank computed it, used its choice.
    assert record["autotune"]["batch_size"] == record["batch_size"]
    store = RunStore(out)
    for chunk in range(N_IMAGES // CHUNK):
        info = store.chunk_info(chunk)
        assert info["rank"] == chunk % 2
        assert info["batch_size"] == record["batch_size"]
    assert record["sessions"][0]["chunks_by_rank"] == [3, 2]
    assert record["threads"] == 1
    single = tmp_path / "one"
    run_audit(
        AuditConfig(
            model="py:tinynets:tiny1000",
            data=str(images),
            protocols=["crop", "black"],
            steps=3,
            sizes=[16],
            chunk_images=CHUNK,
            batch_size=record["batch_size"],
            memory_format=record["memory_format"],
            threads=1,
            workers=0,
            out=str(single),
            measure="logits,features",
            save_features=True,
        ),
        progress=False,
    )
    merged = pq.read_table(out / "predictions.parquet")
    alone = pq.read_table(single / "predictions.parquet")
    assert merged.num_rows == alone.num_rows == N_IMAGES * 2 * 3
    # Rank 0's probe ran on its own first batches, in other configurations: those chunks
    # agree within float tolerance, every other chunk exactly.
    assert record["autotune"]["on_run_views"] is True
    probed = {entry["chunk"] for entry in record["autotune"]["schedule"]}
    assert probed and all(chunk % 2 == 0 for chunk in probed)
    chunk_of = [i // CHUNK for i in merged.column("image_index").to_pylist()]
    for name in merged.column_names:
        a, b = merged.column(name).to_pylist(), alone.column(name).to_pylist()
        exact = [(x, y) for x, y, c in zip(a, b, chunk_of, strict=True) if c not in probed]
        assert all(x == y for x, y in exact), name
        if name in ("top5_probs", "p_ref", "p_prev_top1", "feat_cos", "feat_rel_l2"):
            np.testing.assert_allclose(
                np.array(a, dtype=float), np.array(b, dtype=float), rtol=1e-4, atol=1e-6
            )
        else:
            assert a == b, name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world_size"] == 2
    np.testing.assert_allclose(read_features(out), read_features(single), rtol=1e-4, atol=1e-6)


def test_two_rank_output_resumes_in_one_process(two_rank_run, tmp_path):
    """Work lost on both ranks is redone by a single process, with the recorded settings."""
    images, out = two_rank_run
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    reference = pq.read_table(out / "predictions.parquet")
    for chunk in (1, 4):  # one of each rank
        RunStore(copy).chunk_path(chunk).unlink()
    (copy / "predictions.parquet").unlink()
    args = audit_args(images, copy) + ["--resume", "--workers", "0"]
    from jaggy.cli import main

    assert main(args) == 0
    record = json.loads((copy / "run.json").read_text())
    assert record["sessions"][-1]["chunks_by_rank"] == [2]
    assert pq.read_table(copy / "predictions.parquet").equals(reference)


def test_an_argument_error_stops_every_rank(two_rank_run):
    images, out = two_rank_run
    args = audit_args(images, out) + ["--resume"]
    args[args.index("--steps") + 1] = "4"
    done = torchrun(args, timeout=90)  # a rank left waiting would hit the timeout
    assert done.returncode != 0
    assert "steps: run has 3, now 4" in done.stderr


def test_split_chunks_deals_the_remaining_chunks_round_robin():
    ranks = [Ranks(r, 3) for r in range(3)]
    assert [split_chunks(list(range(7)), r) for r in ranks] == [[0, 3, 6], [1, 4], [2, 5]]
    remaining = [1, 2, 5, 6, 9]  # a resumed run: balanced again
    shares = [split_chunks(remaining, r) for r in ranks]
    assert sorted(c for s in shares for c in s) == remaining
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
