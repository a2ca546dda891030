"""`--graph`: the frozen TorchScript graph and the ONNX Runtime graph of the model, their
eligibility, their check against eager, their place in `--batch-size auto`'s probe, and
resume after SIGKILL and two torchrun ranks in a run through either graph."""

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
KINDS = ["frozen", "onnx"]
NO_BUILD = {"frozen": 0.0, "onnx": 0.0}  # DEFAULT_BUILD_SECONDS of builds that cost nothing


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


class Unexportable(TinyCNN):
    """Traces, but ONNX has no `histc`: its export fails."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + 0.0 * torch.histc(x, bins=4).sum()


def unexportable() -> nn.Module:
    return Unexportable(num_classes=1000)


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


@pytest.mark.parametrize("kind", KINDS)
def test_graph_rows_equal_eager_rows_within_float_tolerance(images, tmp_path, kind):
    eager = run_audit(config(images, tmp_path / "eager", graph="eager"), progress=False)
    graph = run_audit(
        config(images, tmp_path / kind, graph=kind, memory_format="channels_last"),
        progress=False,
    )
    assert graph.manifest.graph == kind and eager.manifest.graph == "eager"
    check = graph.manifest.graph_check
    assert check["ok"] and 0 < check["max_abs_diff"] <= check["tolerance"], check
    assert check["graph"] == kind
    # ONNX Runtime takes contiguous arrays: its run is recorded so
    want_format = "contiguous" if kind == "onnx" else "channels_last"
    assert graph.manifest.memory_format == check["memory_format"] == want_format
    got, want = table(graph.out), table(eager.out)
    assert got.column("top5_probs").to_pylist() != want.column("top5_probs").to_pylist(), (
        "a graph that folds batch norms rounds differently: the rows should not be the "
        "same bits, or this test does not test the graph"
    )
    assert_close_rows(got, want)
    run = json.loads((graph.out / "run.json").read_text())
    assert run["graph"] == kind and run["graph_check"]["ok"]


def test_a_fixed_batch_size_runs_eagerly_by_default_bit_for_bit(images, tmp_path):
    default = run_audit(config(images, tmp_path / "default"), progress=False)
    eager = run_audit(config(images, tmp_path / "eager", graph="eager"), progress=False)
    assert default.manifest.graph == "eager" and default.manifest.graph_check is None
    assert table(default.out).equals(table(eager.out))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--measure", "features"], "hook"),
        (["--dtype", "bfloat16"], "autocast"),
        (["--compile"], "--compile"),
        ([], "forward hooks"),  # with the hooked model
    ],
)
def test_a_graph_is_refused_before_any_work_where_it_cannot_apply(
    images, tmp_path, capsys, args, why, kind
):
    model = f"py:{MODULE}:hooked" if why == "forward hooks" else f"py:{MODULE}:normed"
    out = tmp_path / "out"
    code = jaggy_main(
        ["audit", model, str(images), "--graph", kind, "--out", str(out), "--no-progress"]
        + ["--workers", "0", *args]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"--graph {kind} cannot apply" in err and why in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists(), "refused before any work"


def test_graph_auto_never_tries_where_it_cannot_apply(images, tmp_path, monkeypatch):
    monkeypatch.setattr(_autotune, "_BUILD_SECONDS", {})  # no build measured yet
    monkeypatch.setattr(_autotune, "DEFAULT_BUILD_SECONDS", NO_BUILD)  # any run would try it
    result = run_audit(
        config(images, tmp_path / "hooked", model=f"py:{MODULE}:hooked", batch_size="auto"),
        progress=False,
    )
    assert result.manifest.graph == "eager"
    assert "graph_check" not in result.manifest.autotune
    assert all(p["graph"] == "eager" for p in result.manifest.autotune["probes"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_trace_that_froze_a_branch_is_caught_and_the_run_stays_eager(images, tmp_path, kind):
    model = f"py:{MODULE}:branchy"
    graph = run_audit(config(images, tmp_path / "f", model=model, graph=kind), progress=False)
    eager = run_audit(config(images, tmp_path / "e", model=model, graph="eager"), progress=False)
    check = graph.manifest.graph_check
    assert graph.manifest.graph == "eager" and not check["ok"]
    assert "differ from eager" in check["reason"]
    assert table(graph.out).equals(table(eager.out))
    # the same under --batch-size auto: the probe's check refuses it on a real batch
    auto = run_audit(
        config(images, tmp_path / "a", model=model, graph=kind, batch_size="auto"),
        progress=False,
    )
    tuned = auto.manifest.autotune
    assert auto.manifest.graph == tuned["graph"] == "eager"
    assert "differ from eager" in tuned["graph_check"][kind]["reason"]
    assert any(p.get("error", "").startswith("graph refused") for p in tuned["probes"])
    assert all(b[2] == "eager" for e in tuned["schedule"] for b in e["batches"])


def test_the_probe_tries_onnx_when_it_can_pay_and_records_it(images, tmp_path, monkeypatch):
    monkeypatch.setattr(_autotune, "_BUILD_SECONDS", {})  # no build measured yet
    monkeypatch.setattr(_autotune, "DEFAULT_BUILD_SECONDS", NO_BUILD)  # builds that cost nothing
    monkeypatch.setattr(_autotune, "GRAPH_MIN_TIMED_SECONDS", 0.0)  # the tiny net's views last
    # a short eager climb, whatever the timings: it always leaves views for the graph's trial
    monkeypatch.setattr(_autotune, "CPU_BATCH_SIZES", (1, 2, 4))
    result = run_audit(
        config(
            images,
            tmp_path / "auto",
            batch_size="auto",
            memory_format="contiguous",
            steps=8,  # 128 views: the climb ends within them, then the graphs are tried
            chunk_images=4,
            threads=2,
        ),
        progress=False,
    )
    tuned = result.manifest.autotune
    run = json.loads((result.out / "run.json").read_text())
    assert run["graph"] == result.manifest.graph == tuned["graph"] == run["autotune"]["graph"]
    assert tuned["threads"] == run["threads"] == 2, "the run's threads, not the engine's one"
    trials = tuned["graph_check"]
    assert trials["onnx"]["tried"] is True and trials["onnx"]["checks"][0]["ok"]
    # the onnx graph passed its check: the frozen one, slower where both were measured, is
    # not built as well (the run's views may end before its turn comes)
    skipped = {"tried": False, "why": "the onnx graph was tried"}
    assert trials.get("frozen", skipped) == skipped
    onnx = [p for p in tuned["probes"] if p["graph"] == "onnx"]
    assert onnx and all(p["memory_format"] == "contiguous" for p in onnx)
    assert onnx[0]["timed_calls"] >= _autotune.GRAPH_MIN_TIMED_CALLS
    assert not [p for p in tuned["probes"] if p["graph"] == "frozen"]
    # the check's eager forward computed its batch's rows: it is not counted as build cost
    check = trials["onnx"]["checks"][0]
    assert trials["onnx"]["build_cost_seconds"] == pytest.approx(
        check["seconds"] - check["eager_seconds"], abs=2e-3
    )
    batches = [b for e in tuned["schedule"] for b in e["batches"]]
    assert all(len(b) == 3 for b in batches)
    first = next(i for i, b in enumerate(batches) if b[2] == "onnx")
    assert batches[first - 1][2] == "eager", "the checked batch's rows are the eager ones"
    assert all(b[1] == "contiguous" for b in batches if b[2] == "onnx")
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
            threads=2,
        ),
        progress=False,
    )
    assert_close_rows(table(result.out), table(fixed.out))


def test_the_frozen_graph_is_tried_when_onnx_is_refused(images, tmp_path, monkeypatch):
    """A model whose export fails (an operator ONNX lacks) but which traces: the probe
    records the export's failure and tries the frozen graph."""
    monkeypatch.setattr(_autotune, "_BUILD_SECONDS", {})
    monkeypatch.setattr(_autotune, "DEFAULT_BUILD_SECONDS", NO_BUILD)
    monkeypatch.setattr(_autotune, "GRAPH_MIN_TIMED_SECONDS", 0.0)
    monkeypatch.setattr(_autotune, "CPU_BATCH_SIZES", (2, 4))  # a short climb: views remain
    monkeypatch.setattr(_autotune, "MIN_TIMED_SECONDS", 0.0)
    result = run_audit(
        config(
            images,
            tmp_path / "auto",
            model=f"py:{MODULE}:unexportable",
            batch_size="auto",
            memory_format="contiguous",
            steps=8,
            chunk_images=4,
        ),
        progress=False,
    )
    trials = result.manifest.autotune["graph_check"]
    assert "the export failed" in trials["onnx"]["reason"] and "histc" in trials["onnx"]["reason"]
    assert trials["frozen"]["tried"] is True and trials["frozen"]["checks"][0]["ok"]
    assert any(
        p["graph"] == "frozen" and "views_per_s" in p for p in result.manifest.autotune["probes"]
    )
    assert result.manifest.graph in ("eager", "frozen")


def test_an_export_failure_keeps_a_fixed_run_eager_with_the_reason(images, tmp_path, capfd):
    model = f"py:{MODULE}:unexportable"
    onnx = run_audit(config(images, tmp_path / "o", model=model, graph="onnx"), progress=False)
    eager = run_audit(config(images, tmp_path / "e", model=model, graph="eager"), progress=False)
    check = onnx.manifest.graph_check
    assert onnx.manifest.graph == "eager" and not check["ok"]
    assert check["reason"].startswith("the export failed: UnsupportedOperatorError")
    assert table(onnx.out).equals(table(eager.out))
    captured = capfd.readouterr()
    assert "IR graph" not in captured.out + captured.err, "the exporter's log is silenced"


def test_a_short_run_does_not_pay_for_a_build(images, tmp_path, monkeypatch):
    monkeypatch.setattr(_autotune, "_BUILD_SECONDS", {})  # no build measured yet
    monkeypatch.setattr(_autotune, "DEFAULT_BUILD_SECONDS", {"frozen": 1e6, "onnx": 1e6})
    result = run_audit(config(images, tmp_path / "auto", batch_size="auto"), progress=False)
    assert result.manifest.graph == "eager"
    trials = result.manifest.autotune.get("graph_check") or {}
    assert all(trial["tried"] is False for trial in trials.values())


def simulated_choice(build_seconds: float, remaining: int, eager_forward: float = 0.0) -> tuple:
    """The search's choice when the onnx graph runs twice as fast as eager and its check
    took `build_seconds`, of which `eager_forward` was the eager forward of its batch."""
    search = ProbeSearch(
        [4], ["contiguous"], 4, run_views=remaining, graphs=["eager", "onnx", "frozen"]
    )
    search.build_estimates = dict(NO_BUILD)
    steps = search.steps()
    step = next(steps)
    try:
        while True:
            batch, _, graph, timed = step
            if graph != "eager" and not timed:  # its first batch builds and checks it
                search.trials[graph].setdefault("checks", []).append(
                    {"ok": True, "seconds": build_seconds, "eager_seconds": eager_forward}
                )
            per_view = 0.01 if graph == "eager" else 0.005  # twice as fast
            step = steps.send(batch * per_view)
    except StopIteration:
        pass
    return search.choice(), search.trials


def test_the_choice_counts_the_build_against_the_remaining_views():
    assert simulated_choice(1.0, remaining=10_000)[0] == (4, "contiguous", "onnx")
    assert simulated_choice(100.0, remaining=10_000)[0] == (4, "contiguous", "eager")
    # 10 s of build, 20 s of eager forward whose rows were kept: pays over 100 s of views
    choice, trials = simulated_choice(30.0, remaining=10_000, eager_forward=20.0)
    assert choice == (4, "contiguous", "onnx")
    assert trials["onnx"]["build_cost_seconds"] == 10.0
    assert trials["frozen"]["tried"] is False


def graph_cli(images: Path, out: Path, kind: str) -> list[str]:
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
        kind,
        "--workers",
        "0",
        "--out",
        str(out),
        "--no-progress",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_sigkill_in_a_graph_run_then_resume_gives_the_uninterrupted_rows(images, tmp_path, kind):
    import subprocess

    reference = run_audit(config(images, tmp_path / "ref", graph=kind), progress=False)
    assert reference.manifest.graph == kind
    out = tmp_path / "killed"
    process = subprocess.Popen(
        graph_cli(images, out, kind),
        env=subprocess_env(),  # tests/engine on the path: the model spec resolves
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    done = kill_after(process, out, 1, 0.01)
    assert 1 <= done < N_IMAGES // CHUNK, "the kill should land inside the run"
    resumed = run_audit(config(images, out, graph=kind), resume=True, progress=False)
    assert resumed.manifest.graph == kind
    assert committed(out) == N_IMAGES // CHUNK
    got, want = table(out), table(reference.out)
    for name in got.column_names:  # exact, every column
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


@pytest.mark.parametrize("kind", KINDS)
def test_two_torchrun_ranks_use_rank_0s_graph(images, tmp_path, kind):
    """Rank 0 probes (the graph asked for) and hands its choice, graph included, to rank 1:
    rank 1's chunks equal a single process's through that graph at that configuration
    exactly."""
    import subprocess

    out = tmp_path / "two"
    env = subprocess_env()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", *graph_cli(images, out, kind)[1:]]
    command[command.index("--batch-size") + 1] = "auto"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["graph"] == record["autotune"]["graph"] == kind
    assert record["sessions"][0]["world_size"] == 2
    single = run_audit(
        config(
            images,
            tmp_path / "one",
            batch_size=record["batch_size"],
            memory_format=record["memory_format"],
            graph=kind,
            threads=record["threads"],
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


@pytest.mark.parametrize("kind", KINDS)
def test_compare_refuses_a_graph_for_a_hooked_remedy_before_any_audit(images, tmp_path, kind):
    import jaggy
    from jaggy.errors import ArgumentError

    out = tmp_path / "compare"
    with pytest.raises(ArgumentError, match=f"--graph {kind} cannot apply.*forward hooks"):
        jaggy.compare(
            "py:tinynets:tiny1000",
            str(images),
            variants=["aps"],
            out=str(out),
            graph=kind,
            steps=4,
            sizes=[16],
            workers=0,
            progress=False,
        )
    assert not (out / "variants").exists(), "refused before any audit"


def drive(search: ProbeSearch, seconds_of) -> list[tuple]:
    """Run the search's steps with `seconds_of(batch, format, graph, call)`; a graph's first
    batch passes its check at no cost. Returns the configurations in the order they ran."""
    ran, calls = [], {}
    steps = search.steps()
    try:
        step = next(steps)
        while True:
            batch, memory_format, graph, timed = step
            if graph != "eager" and "checks" not in search.trials[graph]:
                search.trials[graph]["checks"] = [{"ok": True, "seconds": 0.0}]
            key = (batch, memory_format, graph)
            if key not in ran:
                ran.append(key)
            calls[key] = calls.get(key, 0) + 1
            step = steps.send(seconds_of(batch, memory_format, graph, calls[key]))
    except StopIteration:
        pass
    return ran


def test_a_clear_onnx_win_skips_the_rest_of_the_eager_search():
    def twice_as_fast(batch, memory_format, graph, call):
        return batch * (0.005 if graph == "onnx" else 0.01)

    search = ProbeSearch(
        [1, 2, 4, 8], ["contiguous", "channels_last"], 4, 10_000, graphs=["eager", "onnx", "frozen"]
    )
    search.build_estimates = dict(NO_BUILD)
    ran = drive(search, twice_as_fast)
    # one eager configuration, at the smallest batch, then the graph climbs from there
    assert ran[0] == (1, "contiguous", "eager") and ran[1] == (1, "contiguous", "onnx")
    assert all(graph == "onnx" for _, _, graph in ran[1:]), "no eager batch after the trial"
    assert search.choice()[2] == "onnx"
    assert search.eager_search.startswith("stopped after 1/contiguous: the onnx graph ran 2.00x")
    assert search.trials["frozen"] == {"tried": False, "why": "the onnx graph was tried"}


def test_a_close_onnx_graph_lets_the_eager_search_run():
    def close(batch, memory_format, graph, call):
        return batch * (0.0075 if graph == "onnx" else 0.01)  # 1.33x: below GRAPH_CLEAR_WIN

    search = ProbeSearch(
        [1, 2, 4, 8], ["contiguous", "channels_last"], 4, 10_000, graphs=["eager", "onnx", "frozen"]
    )
    search.build_estimates = dict(NO_BUILD)
    ran = drive(search, close)
    assert (4, "channels_last", "eager") in ran and search.eager_search is None
    assert search.trials["onnx"]["tried"] is True


def test_a_graph_trials_rate_is_its_fastest_window_not_its_luckiest_call():
    """Batch 1 makes 16 calls where batch 8 makes 4: one lucky call of batch 1 (a quiet
    moment of the machine) must not make it look faster than batch 8."""

    def lucky_small_batch(batch, memory_format, graph, call):
        per_view = 0.005 if graph == "onnx" else 0.02
        if graph == "onnx" and batch == 1 and call == 5:
            return 0.003  # one call ~2x faster than the others
        return batch * per_view * (1.0 if batch == 8 else 1.1)

    search = ProbeSearch([1, 8], ["contiguous"], 1, 100_000, graphs=["eager", "onnx"])
    search.build_estimates = dict(NO_BUILD)
    drive(search, lucky_small_batch)
    onnx = {p["batch_size"]: p for p in search.results if p["graph"] == "onnx"}
    assert onnx[1]["timed_calls"] >= 2 * _autotune.GRAPH_WINDOW_VIEWS
    assert search.choice() == (8, "contiguous", "onnx")
