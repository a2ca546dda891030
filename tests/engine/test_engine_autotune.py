"""`--batch-size auto`, memory formats, threads, out-of-memory back-off, and options that
cannot work on the device."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from conftest import write_synthetic_images
from jaggy.cli import main as jaggy_main
from jaggy.engine import AuditConfig, run_audit
from jaggy.engine._autotune import (
    CPU_BATCH_SIZES,
    GPU_BATCH_SIZES,
    candidate_batch_sizes,
    choose_configuration,
)
from jaggy.engine._runner import execute
from jaggy.engine._setup import AuditSetup
from jaggy.engine._store import RunStore
from jaggy.errors import ArgumentError, JaggyError
from tinynets import TinyCNN

MODULE = Path(__file__).stem
PACED = f"py:{MODULE}:paced"
N_IMAGES = 6
OOM_LIMIT = 4  # views per call above which `oom_above_4` runs out of memory
SEEN_THREADS: list[int] = []


class OomAbove(TinyCNN):
    """A device with room for OOM_LIMIT views per call: larger batches raise the error
    PyTorch raises when CUDA memory runs out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > OOM_LIMIT:
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate {x.shape[0]} views"
            )
        return super().forward(x)


def oom_above_4() -> torch.nn.Module:
    return OomAbove(num_classes=1000)


class NeverFits(TinyCNN):
    armed = False  # off while the model loads (loading runs it once to count classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if NeverFits.armed:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB")
        return super().forward(x)


def never_fits() -> torch.nn.Module:
    return NeverFits()


class ThreadSpy(TinyCNN):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SEEN_THREADS.append(torch.get_num_threads())
        return super().forward(x)


def thread_spy() -> torch.nn.Module:
    return ThreadSpy()


SECONDS_PER_CALL = 0.03


class Paced(TinyCNN):
    """TinyCNN that takes SECONDS_PER_CALL per forward call: three calls measure a
    configuration (one untimed, two timed), so the probe ends within a short run."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(SECONDS_PER_CALL)
        return super().forward(x)


def paced() -> torch.nn.Module:
    return Paced(num_classes=1000)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tune") / "images"
    write_synthetic_images(folder, N_IMAGES, side=40, seed=11)
    return folder


def config(folder: Path, out: Path, **changes) -> AuditConfig:
    base = dict(
        model="py:tinynets:tiny1000",
        data=str(folder),
        protocols=["crop", "black"],
        steps=4,
        sizes=[16],
        chunk_images=2,
        workers=0,
        out=str(out),
    )
    return AuditConfig(**{**base, **changes})


def rows(out: Path):
    return pq.read_table(out / "predictions.parquet")


def test_auto_probes_formats_and_sizes_and_records_them(images, tmp_path):
    started = time.perf_counter()
    result = run_audit(config(images, tmp_path / "auto", model=PACED), progress=False)
    assert time.perf_counter() - started < 30
    tuned = result.manifest.autotune
    assert tuned["seconds"] < 10  # a tiny model: well under a second on an idle machine
    probed = {(p["batch_size"], p["memory_format"]) for p in tuned["probes"]}
    assert {p[1] for p in probed} == {"contiguous", "channels_last"}
    assert all(b in CPU_BATCH_SIZES and b <= 2 * 8 for b, _ in probed)  # 2 images x 8 views
    timed = [p for p in tuned["probes"] if "views_per_s" in p]
    fastest = max(timed, key=lambda p: p["views_per_s"])
    assert (tuned["batch_size"], tuned["memory_format"]) == (
        fastest["batch_size"],
        fastest["memory_format"],
    )
    assert result.manifest.batch_size == tuned["batch_size"]
    assert result.manifest.memory_format == tuned["memory_format"]
    assert tuned["on_run_views"] is True and "incomplete" not in tuned
    record = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert record["autotune"] == tuned and record["identity"]["batch_size"] == "auto"


def assert_rows_close(a, b) -> None:
    """Rows of runs whose batches differ in configuration: the same views and answers, the
    probabilities equal within float tolerance."""
    assert a.num_rows == b.num_rows
    for name in ("image_id", "protocol", "view", "dx", "dy", "top1", "ref_class", "finite"):
        assert a.column(name).to_pylist() == b.column(name).to_pylist(), name
    for name in ("top5_probs", "p_ref"):
        torch.testing.assert_close(
            torch.tensor(a.column(name).to_pylist(), dtype=torch.float64),
            torch.tensor(b.column(name).to_pylist(), dtype=torch.float64),
            rtol=1e-4,
            atol=1e-6,
            equal_nan=True,
        )


def test_auto_rows_equal_a_fixed_run_with_the_recorded_choice(images, tmp_path):
    auto = run_audit(config(images, tmp_path / "auto", model=PACED), progress=False)
    choice = auto.manifest.autotune
    fixed = run_audit(
        config(
            images,
            tmp_path / "fixed",
            model=PACED,
            batch_size=choice["batch_size"],
            memory_format=choice["memory_format"],
        ),
        progress=False,
    )
    assert_rows_close(rows(auto.out), rows(fixed.out))
    # The chunks the probe's batches did not touch are those of the fixed run, bit for bit.
    touched = {entry["chunk"] for entry in choice["schedule"]}
    assert 0 < choice["views"]["count"] < rows(auto.out).num_rows
    later = 2 * (max(touched) + 1) * 8  # 2 images of 8 views per chunk
    assert later < rows(auto.out).num_rows
    assert rows(auto.out).slice(later).equals(rows(fixed.out).slice(later))


def test_resume_reuses_the_recorded_choice_without_probing(images, tmp_path, monkeypatch):
    out = tmp_path / "resumed"
    first = run_audit(config(images, out, images=2), progress=False)

    def no_probe(*args, **kwargs):
        raise AssertionError("a resumed run must not probe again")

    monkeypatch.setattr("jaggy.engine._runner.choose_configuration", no_probe)
    monkeypatch.setattr("jaggy.engine._runner.LiveProbe", no_probe)
    again = run_audit(config(images, out, images=2), resume=True, progress=False)
    assert again.manifest.autotune == first.manifest.autotune
    assert rows(out).num_rows == 2 * 8


def test_candidate_batch_sizes_never_exceed_a_chunk():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert candidate_batch_sizes(cpu, 1000) == list(CPU_BATCH_SIZES)
    assert candidate_batch_sizes(cpu, 7) == [1, 2, 4]
    assert candidate_batch_sizes(cuda, 100) == [8, 16, 32, 64]
    assert candidate_batch_sizes(cuda, 5) == [5]
    assert candidate_batch_sizes(cuda, 10**6) == list(GPU_BATCH_SIZES)


def test_probe_stops_growing_at_out_of_memory(images, tmp_path):
    setup = AuditSetup(
        config(images, tmp_path / "x", model=f"py:{MODULE}:oom_above_4", chunk_images=8)
    )
    tuned = choose_configuration(setup, ["contiguous", "channels_last"])
    assert tuned["batch_size"] <= OOM_LIMIT
    failed = [p for p in tuned["probes"] if p.get("error") == "out of memory"]
    assert [p["batch_size"] for p in failed] == [8, 8]  # once per format, then it stops
    assert max(p["batch_size"] for p in tuned["probes"]) == 8


def test_out_of_memory_halves_the_batch_and_records_it(images, tmp_path):
    oom = run_audit(
        config(images, tmp_path / "oom", model=f"py:{MODULE}:oom_above_4", batch_size=16),
        progress=False,
    )
    backoff = oom.manifest.oom_backoff
    assert [(e["from"], e["to"], e["chunk"]) for e in backoff] == [(16, 8, 0), (8, 4, 0)]
    assert all(e["session"] == 0 and e["rank"] == 0 for e in backoff)
    # The rows are those of a run that used batch 4 from the start (16 is a multiple of 4,
    # so the pieces of the failed batch are the batches such a run makes).
    four = run_audit(
        config(images, tmp_path / "four", model=f"py:{MODULE}:oom_above_4", batch_size=4),
        progress=False,
    )
    assert rows(oom.out).equals(rows(four.out))
    assert four.manifest.oom_backoff == []


def test_out_of_memory_at_one_view_is_a_clear_error(images, tmp_path):
    setup = AuditSetup(
        config(images, tmp_path / "never", model=f"py:{MODULE}:never_fits", batch_size=2)
    )
    NeverFits.armed = True
    try:
        with pytest.raises(JaggyError, match="out of memory even with one view per batch"):
            execute(setup, progress=False)
    finally:
        NeverFits.armed = False


def test_threads_of_the_run_are_reused_on_resume(images, tmp_path):
    out = tmp_path / "threads"
    before = torch.get_num_threads()
    run_audit(config(images, out, model=f"py:{MODULE}:thread_spy", images=2, batch_size=4))
    record = json.loads((out / "run.json").read_text())
    assert record["threads"] == before
    (out / "parts" / "chunk-000000.parquet").unlink()
    SEEN_THREADS.clear()
    torch.set_num_threads(before + 1)
    try:
        setup = AuditSetup(
            config(images, out, model=f"py:{MODULE}:thread_spy", images=2, batch_size=4)
        )
        SEEN_THREADS.clear()  # loading the model ran it once
        execute(setup, resume=True, progress=False)
        assert set(SEEN_THREADS) == {before}  # computed with the run's own count ...
        assert torch.get_num_threads() == before + 1  # ... and the caller's is restored
    finally:
        torch.set_num_threads(before)


def test_channels_last_changes_layout_not_results(images, tmp_path):
    a = run_audit(config(images, tmp_path / "a", batch_size=4), progress=False)
    b = run_audit(config(images, tmp_path / "b", batch_size=4, channels_last=True))
    assert a.manifest.memory_format == "contiguous"
    assert b.manifest.memory_format == "channels_last"
    pa_, pb = rows(a.out), rows(b.out)
    assert pa_.column("top1").to_pylist() == pb.column("top1").to_pylist()
    probs_a = torch.tensor(pa_.column("top5_probs").to_pylist())
    probs_b = torch.tensor(pb.column("top5_probs").to_pylist())
    torch.testing.assert_close(probs_a, probs_b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dtype": "float16"}, "--dtype float16 needs a GPU"),
        ({"memory_format": "sideways"}, "--memory-format must be one of"),
        ({"channels_last": True, "memory_format": "contiguous"}, "contradicts"),
        ({"threads": 0}, "--threads must be at least 1"),
        ({"device": "tpu"}, "--device"),
    ],
)
def test_impossible_options_are_refused_before_loading_the_model(
    images, tmp_path, monkeypatch, changes, message
):
    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr("jaggy.engine._setup.load_model", no_load)
    with pytest.raises(ArgumentError, match=message):
        AuditSetup(config(images, tmp_path / "x", **changes))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_is_refused_on_the_command_line(images, tmp_path, capsys):
    code = jaggy_main(
        ["audit", "py:tinynets:tiny", str(images), "--device", "cuda", "--out", str(tmp_path)]
    )
    assert code == 2
    assert "no CUDA device is available here" in capsys.readouterr().err


def test_compile_without_a_compiler_is_refused(images, tmp_path, monkeypatch):
    monkeypatch.setattr("jaggy.engine._device.shutil.which", lambda name: None)
    with pytest.raises(ArgumentError, match="--compile cannot work here: no C\\+\\+ compiler"):
        AuditSetup(config(images, tmp_path / "x", compile=True))


@pytest.mark.slow
def test_compiled_model_gives_the_eager_answers(images, tmp_path):
    eager = run_audit(config(images, tmp_path / "eager", batch_size=8, images=2))
    compiled = run_audit(
        config(images, tmp_path / "compiled", batch_size=8, images=2, compile=True)
    )
    assert compiled.manifest.compile is True
    a, b = rows(eager.out), rows(compiled.out)
    assert a.column("top1").to_pylist() == b.column("top1").to_pylist()
    torch.testing.assert_close(
        torch.tensor(a.column("top5_probs").to_pylist()),
        torch.tensor(b.column("top5_probs").to_pylist()),
        rtol=1e-4,
        atol=1e-6,
    )


def fake_timings(monkeypatch, rates: dict) -> list:
    """Replace the timing of one configuration by `rates[(batch, format)]` (views/s);
    returns the list of configurations timed, in order."""
    timed = []

    def timed_call(forward, batch):
        key = (batch.shape[0], forward.memory_format)
        if key not in timed:
            timed.append(key)
        return batch.shape[0] / rates[key]

    monkeypatch.setattr("jaggy.engine._autotune._timed_call", timed_call)
    return timed


def curve(peak: int, top: float, fmt_scale: float = 1.0) -> dict:
    """A throughput curve over batch sizes that rises to `peak` and falls after it."""
    return {
        b: top * fmt_scale / (1 + abs(b.bit_length() - peak.bit_length())) for b in CPU_BATCH_SIZES
    }


def rates_for(contiguous: dict, channels_last: dict) -> dict:
    return {
        **{(b, "contiguous"): r for b, r in contiguous.items()},
        **{(b, "channels_last"): r for b, r in channels_last.items()},
    }


def test_climb_finds_a_peak_above_the_start(images, tmp_path, monkeypatch):
    rates = rates_for(curve(8, 1e5), curve(16, 1.2e5))
    timed = fake_timings(monkeypatch, rates)
    setup = AuditSetup(config(images, tmp_path / "x", chunk_images=6))  # 48 views per chunk
    tuned = choose_configuration(setup, ["contiguous", "channels_last"])
    assert (tuned["batch_size"], tuned["memory_format"]) == (16, "channels_last")
    # starts at 4 in both formats, climbs the faster one there first, and each climb stops
    # one step past its peak
    assert timed == [
        (4, "contiguous"),
        (4, "channels_last"),
        (8, "contiguous"),
        (16, "contiguous"),
        (8, "channels_last"),
        (16, "channels_last"),
        (32, "channels_last"),
    ]


def test_climb_goes_down_when_small_batches_win(images, tmp_path, monkeypatch):
    timed = fake_timings(monkeypatch, rates_for(curve(1, 5e4), curve(2, 4e4)))
    setup = AuditSetup(config(images, tmp_path / "x"))
    tuned = choose_configuration(setup, ["contiguous", "channels_last"])
    assert (tuned["batch_size"], tuned["memory_format"]) == (1, "contiguous")
    assert (8, "contiguous") in timed and (16, "contiguous") not in timed


def test_a_short_run_probes_within_its_budget(images, tmp_path, monkeypatch):
    # 0.2 views/s at the start: the run (2 images x 8 views) would last ~80 s, so the probe
    # may spend 1% of that, 0.8 s, and nothing beyond the starting configurations fits.
    timed = fake_timings(monkeypatch, rates_for(curve(16, 0.5), curve(16, 0.6)))
    setup = AuditSetup(config(images, tmp_path / "x", images=2))
    tuned = choose_configuration(setup, ["contiguous", "channels_last"])
    assert timed == [(4, "contiguous"), (4, "channels_last")]
    assert (tuned["batch_size"], tuned["memory_format"]) == (4, "channels_last")
    assert tuned["budget_seconds"] == pytest.approx(0.8, abs=0.01)


def test_a_later_audit_of_the_same_model_reuses_the_probe(images, tmp_path, monkeypatch):
    first = AuditSetup(config(images, tmp_path / "first", batch_size="auto"))
    a = execute(first, progress=False)
    assert not a.manifest.autotune.get("reused")

    def no_probe(*args, **kwargs):
        raise AssertionError("probed again")

    monkeypatch.setattr("jaggy.engine._runner.LiveProbe", no_probe)
    again = AuditSetup(config(images, tmp_path / "again", batch_size="auto"), first.loaded)
    b = execute(again, progress=False)
    assert b.manifest.autotune["reused"] is True
    assert (b.manifest.batch_size, b.manifest.memory_format) == (
        a.manifest.batch_size,
        a.manifest.memory_format,
    )
    other = AuditSetup(config(images, tmp_path / "other", batch_size="auto"))  # a new model
    with pytest.raises(AssertionError, match="probed again"):
        execute(other, progress=False)


class StopsAfter(Paced):
    """Paced, and an error at the `calls`-th forward call (a run killed mid-probe)."""

    calls = 0
    limit = 10**9

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        StopsAfter.calls += 1
        if StopsAfter.calls > StopsAfter.limit:
            raise RuntimeError("stopped for the test")
        return super().forward(x)


def stops_after() -> torch.nn.Module:
    return StopsAfter(num_classes=1000)


class NanForBright(Paced):
    """Paced, with NaN logits for the views whose central input value falls in every fourth
    thousandth (about a quarter of them, whatever batch they are in)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        bright = (x[:, 0, 16, 16] * 1000).floor() % 4 == 0
        return torch.where(bright[:, None], torch.full_like(out, float("nan")), out)


def nan_for_bright() -> torch.nn.Module:
    return NanForBright(num_classes=1000)


def test_the_probe_record_describes_the_batches_it_ran(images, tmp_path):
    result = run_audit(config(images, tmp_path / "auto", model=PACED), progress=False)
    tuned = result.manifest.autotune
    store = RunStore(result.out)
    per_chunk = {c: store.chunk_info(c).get("probe_views", 0) for c in range(3)}
    scheduled = {e["chunk"]: sum(b[0] for b in e["batches"]) for e in tuned["schedule"]}
    assert {c: v for c, v in per_chunk.items() if v} == scheduled
    assert sum(scheduled.values()) == tuned["views"]["count"]
    # every configuration it measured ran its untimed call and its timed calls on the run
    calls = sum(1 + p["timed_calls"] for p in tuned["probes"] if "timed_calls" in p)
    assert calls <= sum(len(e["batches"]) for e in tuned["schedule"])
    assert 0 <= tuned["extra_seconds"] <= tuned["forward_seconds"] <= tuned["seconds"]
    assert result.timings["autotune"] == tuned["extra_seconds"]
    assert all(
        b[1] in ("contiguous", "channels_last") for e in tuned["schedule"] for b in e["batches"]
    )


def test_a_run_killed_mid_probe_probes_again_on_resume(images, tmp_path):
    out = tmp_path / "killed"
    StopsAfter.calls, StopsAfter.limit = 0, 4  # the probe needs 6 calls at the start
    try:
        with pytest.raises(RuntimeError, match="stopped for the test"):
            run_audit(config(images, out, model=f"py:{MODULE}:stops_after"), progress=False)
    finally:
        StopsAfter.limit = 10**9
    record = json.loads((out / "run.json").read_text())
    assert record["autotune"]["status"] == "pending"
    assert not list((out / "parts").glob("chunk-*.parquet"))  # nothing committed mid-probe
    again = run_audit(
        config(images, out, model=f"py:{MODULE}:stops_after"), resume=True, progress=False
    )
    tuned = again.manifest.autotune
    assert tuned.get("status") is None and tuned["on_run_views"] is True
    fixed = run_audit(
        config(
            images,
            tmp_path / "fixed",
            model=PACED,
            batch_size=tuned["batch_size"],
            memory_format=tuned["memory_format"],
        ),
        progress=False,
    )
    assert_rows_close(rows(out), rows(fixed.out))
    assert len(again.manifest.sessions) == 2


def test_a_probed_chunk_computed_again_on_resume_runs_the_recorded_batches(images, tmp_path):
    out = tmp_path / "auto"
    first = run_audit(config(images, out, model=PACED), progress=False)
    reference = rows(out)
    touched = [e["chunk"] for e in first.manifest.autotune["schedule"]]
    for chunk in touched:  # lost after the choice was recorded
        RunStore(out).chunk_path(chunk).unlink()
    (out / "predictions.parquet").unlink()
    again = run_audit(config(images, out, model=PACED), resume=True, progress=False)
    assert rows(out).equals(reference)  # bit for bit: the same batches, the same formats
    assert again.manifest.autotune == first.manifest.autotune


def test_non_finite_outputs_during_the_probe_are_rows_like_any_other(images, tmp_path):
    spec = f"py:{MODULE}:nan_for_bright"
    auto = run_audit(config(images, tmp_path / "auto", model=spec), progress=False)
    tuned = auto.manifest.autotune
    assert tuned["on_run_views"] is True and tuned["views"]["count"] > 0
    fixed = run_audit(
        config(
            images,
            tmp_path / "fixed",
            model=spec,
            batch_size=tuned["batch_size"],
            memory_format=tuned["memory_format"],
        ),
        progress=False,
    )
    finite = rows(auto.out).column("finite").to_pylist()
    assert 0 < finite.count(False) < len(finite)
    assert_rows_close(rows(auto.out), rows(fixed.out))
    assert auto.manifest.nonfinite_views["count"] == finite.count(False)


def test_out_of_memory_during_the_probe_reruns_the_views_without_back_off(images, tmp_path):
    auto = run_audit(
        config(images, tmp_path / "oom", model=f"py:{MODULE}:oom_above_4", chunk_images=8),
        progress=False,
    )
    tuned = auto.manifest.autotune
    assert tuned["batch_size"] <= OOM_LIMIT
    assert auto.manifest.oom_backoff == []
    assert rows(auto.out).num_rows == N_IMAGES * 8
    keys = [(r["image_id"], r["protocol"], r["view"]) for r in rows(auto.out).to_pylist()]
    assert len(set(keys)) == len(keys)  # the views of a failed batch ran once, in order
    assert keys == sorted(keys, key=lambda k: (k[0], k[1] != "crop", k[2]))


def test_a_fixed_runs_check_views_are_the_pools_first_made_alone(images, tmp_path, monkeypatch):
    from jaggy.engine._autotune import probe_views

    setup = AuditSetup(config(images, tmp_path / "x", protocols=["crop", "black", "mean"]))
    pool, source = probe_views(setup)
    made = []
    for protocol in setup.protocols:
        original = protocol.make_views

        def counted(source, indices, original=original):
            made.append(len(indices))
            return original(source, indices)

        monkeypatch.setattr(protocol, "make_views", counted)
    first, first_source = probe_views(setup, limit=5)
    assert first_source == source and torch.equal(first, pool[:5])
    assert sum(made) == 5 < len(pool), "only the views the check needs are made"
