"""`--graph`: the frozen TorchScript graph of the model, its eligibility, its check against
eager, its place in `--batch-size auto`'s probe, and resume after SIGKILL in a frozen run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from test_engine_resume import committed, kill_after, subprocess_env
from torch import nn

from conftest import write_synthetic_images
from jaggy.cli import main as jaggy_main
from jaggy.engine import AuditConfig, _autotune, run_audit
from jaggy.engine._autotune import ProbeSearch
from tinynets import TINY_PREPROCESSING, TinyCNN

MODULE = Path(__file__).stem
N_IMAGES, CHUNK, BATCH = 8, 2, 5


class NormedNet(nn.Module):
    """Conv -> batch norm -> ReLU blocks at width 96 on 16 x 16 (so a frozen graph folds
    the norms, which changes rounding only), then a 1000-class head. Heavy enough (about
    30 ms per batch of 5 on one thread) for a kill to land inside a run."""

    def __init__(self, width: int = 96, blocks: int = 4):
        super().__init__()
        torch.manual_seed(3)
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU()]
        for _ in range(blocks):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        for m in self.features:
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics to fold
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
        self.head = nn.Linear(width, 1000)
        self.jaggy_preprocessing = dict(TINY_PREPROCESSING)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def normed() -> nn.Module:
    return NormedNet()


class Branchy(TinyCNN):
    """Data-dependent control flow: tracing keeps the branch its input took. The trace
    input (standard normal noise) reaches below -3; the normalised views of real images
    (std 0.25 around 0.5) never do, so they take the other branch eagerly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        if bool(x.min() < -3):
            return -logits
        return logits


def branchy() -> nn.Module:
    return Branchy(num_classes=1000)


class Hooked(TinyCNN):
    def __init__(self):
        super().__init__(num_classes=1000)
        self.features[0].register_forward_hook(lambda module, inputs, output: None)


def hooked() -> nn.Module:
    return Hooked()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("graph") / "images"
    write_synthetic_images(folder, N_IMAGES, side=40, seed=5)
    return folder


def config(folder: Path, out: Path, **changes) -> AuditConfig:
    base = dict(
        model=f"py:{MODULE}:normed",
        data=str(folder),
        protocols=["crop", "black"],
        steps=4,
        sizes=[16],
        batch_size=BATCH,
        chunk_images=CHUNK,
        workers=0,
        out=str(out),
    )
    return AuditConfig(**{**base, **changes})


def table(out: Path):
    return pq.read_table(Path(out) / "predictions.parquet")


def assert_close_rows(got, want) -> None:
    assert got.num_rows == want.num_rows
    for name in ("image_id", "protocol", "view", "top1", "ref_class", "top5_ids"):
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    for name in ("top5_probs", "p_ref"):
        torch.testing.assert_close(
            torch.tensor(got.column(name).to_pylist()),
            torch.tensor(want.column(name).to_pylist()),
            rtol=1e-4,
            atol=1e-6,
        )


def test_frozen_rows_equal_eager_rows_within_float_tolerance(images, tmp_path):
    eager = run_audit(config(images, tmp_path / "eager", graph="eager"), progress=False)
    frozen = run_audit(config(images, tmp_path / "frozen", graph="frozen"), progress=False)
    assert frozen.manifest.graph == "frozen" and eager.manifest.graph == "eager"
    check = frozen.manifest.graph_check
    assert check["ok"] and 0 < check["max_abs_diff"] <= check["tolerance"], check
    got, want = table(frozen.out), table(eager.out)
    assert got.column("top5_probs").to_pylist() != want.column("top5_probs").to_pylist(), (
        "a graph that folds batch norms rounds differently: the rows should not be the "
        "same bits, or this test does not test the frozen graph"
    )
    assert_close_rows(got, want)
    run = json.loads((frozen.out / "run.json").read_text())
    assert run["graph"] == "frozen" and run["graph_check"]["ok"]


def test_a_fixed_batch_size_runs_eagerly_by_default_bit_for_bit(images, tmp_path):
    default = run_audit(config(images, tmp_path / "default"), progress=False)
    eager = run_audit(config(images, tmp_path / "eager", graph="eager"), progress=False)
    assert default.manifest.graph == "eager" and default.manifest.graph_check is None
    assert table(default.out).equals(table(eager.out))


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--measure", "features"], "hook"),
        (["--dtype", "bfloat16"], "autocast"),
        (["--compile"], "--compile"),
        ([], "forward hooks"),  # with the hooked model
    ],
)
def test_graph_frozen_is_refused_before_any_work_where_it_cannot_apply(
    images, tmp_path, capsys, args, why
):
    model = f"py:{MODULE}:hooked" if why == "forward hooks" else f"py:{MODULE}:normed"
    out = tmp_path / "out"
    code = jaggy_main(
        ["audit", model, str(images), "--graph", "frozen", "--out", str(out), "--no-progress"]
        + ["--workers", "0", *args]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "--graph frozen cannot apply" in err and why in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists(), "refused before any work"


def test_graph_auto_never_tries_where_it_cannot_apply(images, tmp_path, monkeypatch):
    monkeypatch.setattr(_autotune, "_BUILD_SECONDS", {})  # no build measured yet
    monkeypatch.setattr(_autotune, "DEFAULT_BUILD_SECONDS", 0.0)  # any run would try it
    result = run_audit(
        config(images, tmp_path / "hooked", model=f"py:{MODULE}:hooked", batch_size="auto"),
        progress=False,
    )
    assert result.manifest.graph == "eager"
    assert "graph_check" not in result.manifest.autotune
    assert all(p["graph"] == "eager" for p in result.manifest.autotune["probes"])


def test_a_trace_that_froze_a_branch_is_caught_and_the_run_stays_eager(images, tmp_path):
    model = f"py:{MODULE}:branchy"
    frozen = run_audit(config(images, tmp_path / "f", model=model, graph="frozen"), progress=False)
    eager = run_audit(config(images, tmp_path / "e", model=model, graph="eager"), progress=False)
    check = frozen.manifest.graph_check
    assert frozen.manifest.graph == "eager" and not check["ok"]
    assert "differ from eager" in check["reason"]
    assert table(frozen.out).equals(table(eager.out))
    # the same under --batch-size auto: the probe's check refuses it on a real batch
    auto = run_audit(
        config(images, tmp_path / "a", model=model, graph="frozen", batch_size="auto"),
        progress=False,
    )
    tuned = auto.manifest.autotune
    assert auto.manifest.graph == tuned["graph"] == "eager"
    assert "differ from eager" in tuned["graph_check"]["reason"]
    assert any(p.get("error", "").startswith("graph refused") for p in tuned["probes"])
    assert all(b[2] == "eager" for e in tuned["schedule"] for b in e["batches"])


def test_the_probe_tries_the_graph_when_it_can_pay_and_records_it(images, tmp_path, monkeypatch):
    monkeypatch.setattr(_autotune, "_BUILD_SECONDS", {})  # no build measured yet
    monkeypatch.setattr(_autotune, "DEFAULT_BUILD_SECONDS", 0.0)  # a build that costs nothing
    result = run_audit(
        config(
            images,
            tmp_path / "auto",
            batch_size="auto",
            memory_format="contiguous",
            steps=8,  # 128 views: the climb ends within them, then the graph is tried
            chunk_images=4,
        ),
        progress=False,
    )
    tuned = result.manifest.autotune
    run = json.loads((result.out / "run.json").read_text())
    assert run["graph"] == result.manifest.graph == tuned["graph"] == run["autotune"]["graph"]
    assert tuned["graph_check"]["tried"] is True
    assert tuned["graph_check"]["checks"][0]["ok"]
    frozen = [p for p in tuned["probes"] if p["graph"] == "frozen"]
    assert frozen and "views_per_s" in frozen[0]
    batches = [b for e in tuned["schedule"] for b in e["batches"]]
    assert all(len(b) == 3 for b in batches) and any(b[2] == "frozen" for b in batches)
    # a fixed run at the recorded configuration gives the same rows within float tolerance
    fixed = run_audit(
        config(
            images,
            tmp_path / "fixed",
            batch_size=tuned["batch_size"],
            memory_format=tuned["memory_format"],
            graph=tuned["graph"],
            steps=8,
            chunk_images=4,
        ),
        progress=False,
    )
    assert_close_rows(table(result.out), table(fixed.out))


def test_a_short_run_does_not_pay_for_a_build(images, tmp_path, monkeypatch):
    monkeypatch.setattr(_autotune, "_BUILD_SECONDS", {})  # no build measured yet
    monkeypatch.setattr(_autotune, "DEFAULT_BUILD_SECONDS", 1e6)
    result = run_audit(config(images, tmp_path / "auto", batch_size="auto"), progress=False)
    assert result.manifest.graph == "eager"
    trial = result.manifest.autotune.get("graph_check")
    assert trial is None or trial["tried"] is False


def test_the_choice_counts_the_build_against_the_remaining_views():
    def run(build_seconds: float, remaining: int) -> tuple:
        search = ProbeSearch([4], ["contiguous"], 4, run_views=remaining)
        search.graphs = ["eager", "frozen"]
        search.build_estimate = 0.0
        steps = search.steps()
        step = next(steps)
        try:
            while True:
                batch, _, graph, timed = step
                if graph == "frozen" and not timed:  # its first batch builds and checks it
                    search.graph_record.setdefault("checks", []).append(
                        {"ok": True, "seconds": build_seconds}
                    )
                per_view = 0.01 if graph == "eager" else 0.005  # frozen: twice as fast
                step = steps.send(batch * per_view)
        except StopIteration:
            pass
        return search.choice()

    assert run(build_seconds=1.0, remaining=10_000) == (4, "contiguous", "frozen")
    assert run(build_seconds=100.0, remaining=10_000) == (4, "contiguous", "eager")


def frozen_cli(images: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jaggy",
        "audit",
        f"py:{MODULE}:normed",
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
        "--graph",
        "frozen",
        "--workers",
        "0",
        "--out",
        str(out),
        "--no-progress",
    ]


def test_sigkill_in_a_frozen_run_then_resume_gives_the_uninterrupted_rows(images, tmp_path):
    import subprocess

    reference = run_audit(config(images, tmp_path / "ref", graph="frozen"), progress=False)
    assert reference.manifest.graph == "frozen"
    out = tmp_path / "killed"
    process = subprocess.Popen(
        frozen_cli(images, out),
        env=subprocess_env(),  # tests/engine on the path: the model spec resolves
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    done = kill_after(process, out, 1, 0.01)
    assert 1 <= done < N_IMAGES // CHUNK, "the kill should land inside the run"
    resumed = run_audit(config(images, out, graph="frozen"), resume=True, progress=False)
    assert resumed.manifest.graph == "frozen"
    assert committed(out) == N_IMAGES // CHUNK
    got, want = table(out), table(reference.out)
    for name in got.column_names:  # exact, every column
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def test_two_torchrun_ranks_use_rank_0s_frozen_graph(images, tmp_path):
    """Rank 0 probes (the frozen graph asked for) and hands its choice, graph included, to
    rank 1: rank 1's chunks equal a single frozen process's at that configuration exactly."""
    import subprocess

    out = tmp_path / "two"
    env = subprocess_env()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", *frozen_cli(images, out)[1:]]
    command[command.index("--batch-size") + 1] = "auto"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["graph"] == record["autotune"]["graph"] == "frozen"
    assert record["sessions"][0]["world_size"] == 2
    single = run_audit(
        config(
            images,
            tmp_path / "one",
            batch_size=record["batch_size"],
            memory_format=record["memory_format"],
            graph="frozen",
            threads=1,
        ),
        progress=False,
    )
    merged, alone = table(out), table(single.out)
    assert_close_rows(merged, alone)
    probed = {entry["chunk"] for entry in record["autotune"]["schedule"]}
    chunk_of = [i // CHUNK for i in merged.column("image_index").to_pylist()]
    assert any(c % 2 == 1 for c in chunk_of) and not any(c % 2 == 1 for c in probed)
    for name in merged.column_names:
        a, b = merged.column(name).to_pylist(), alone.column(name).to_pylist()
        assert all(x == y for x, y, c in zip(a, b, chunk_of, strict=True) if c not in probed), name


def test_compare_refuses_graph_frozen_for_a_hooked_remedy_before_any_audit(images, tmp_path):
    import jaggy
    from jaggy.errors import ArgumentError

    out = tmp_path / "compare"
    with pytest.raises(ArgumentError, match="--graph frozen cannot apply.*forward hooks"):
        jaggy.compare(
            "py:tinynets:tiny1000",
            str(images),
            variants=["aps"],
            out=str(out),
            graph="frozen",
            steps=4,
            sizes=[16],
            workers=0,
            progress=False,
        )
    assert not (out / "variants").exists(), "refused before any audit"
