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
from jaggy.errors import ArgumentError, JaggyError
from tinynets import TinyCNN

MODULE = Path(__file__).stem
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
    result = run_audit(config(images, tmp_path / "auto"), progress=False)
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
    assert tuned["views"]["from"] == "img000.png"
    record = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert record["autotune"] == tuned and record["identity"]["batch_size"] == "auto"


def test_auto_rows_equal_a_fixed_run_with_the_recorded_choice(images, tmp_path):
    auto = run_audit(config(images, tmp_path / "auto"), progress=False)
    choice = auto.manifest.autotune
    fixed = run_audit(
        config(
            images,
            tmp_path / "fixed",
            batch_size=choice["batch_size"],
            memory_format=choice["memory_format"],
        ),
        progress=False,
    )
    assert rows(auto.out).equals(rows(fixed.out))
    assert auto.summary == fixed.summary


def test_resume_reuses_the_recorded_choice_without_probing(images, tmp_path, monkeypatch):
    out = tmp_path / "resumed"
    first = run_audit(config(images, out, images=2), progress=False)

    def no_probe(*args, **kwargs):
        raise AssertionError("a resumed run must not probe again")

    monkeypatch.setattr("jaggy.engine._autotune.choose_configuration", no_probe)
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

    def time_calls(forward, batch):
        key = (batch.shape[0], forward.memory_format)
        timed.append(key)
        return batch.shape[0] / rates[key]

    monkeypatch.setattr("jaggy.engine._autotune._time_calls", time_calls)
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

    monkeypatch.setattr("jaggy.engine._autotune.probe_views", no_probe)
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
