"""The GPU path, proven in one run: every benchmark and check of `benchmarks/gpu.sh`.

Usage: python benchmarks/gpu.py [--device cuda] [--out benchmarks/gpu-results.json]
       [--quick] [--timeout 1200] [--model jaggy:efficientnet_lite0]

Steps (each benchmark in its own process, so that one failure or one compiled model cannot
disturb the next; a step that cannot run on this machine is recorded as skipped, with why):

- overhead at float32, bfloat16 and float16 autocast (`benchmarks/overhead.py`: the audit
  at a fixed configuration against a bare `model(x)` loop, and `--batch-size auto` against the
  best of a sweep of batch sizes x memory formats); the fixed configuration once more in
  channels-last, and compiled (`torch.compile`, audit and bare loop alike).
- reference at float32, bfloat16 and float16 (`benchmarks/reference.py`: the audit against the
  study's batch-of-one loop; float16 autocast exists on CUDA only).
- out-of-memory back-off: the process's CUDA memory capped (torch.cuda.set_per_process_memory_
  fraction) below what the batch needs; the audit must halve its batch, record every halving,
  and give the rows of an uncapped run at the batch size it ended with.
- two ranks: `torchrun --nproc-per-node 2` over two GPUs against one process (when the machine
  has two GPUs), same rows.
- float32 numbers on the device against the CPU's: same top-1 on every view, probabilities
  within 1e-4.

Targets: overhead >= 0.95 (fixed and automatic), reference >= 10x on a GPU (>= 1.5x on a CPU).
Everything goes into one JSON file (`--out`), with the machine and each step's ratios.
`--device cpu` runs the same script end to end on a CPU (float16 and the CUDA-only checks
are then skipped with their reason); `--quick` makes every benchmark small.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import torch  # noqa: E402
from _bench import machine, photo_folder, with_load_average  # noqa: E402

from jaggy.engine._device import resolve_device  # noqa: E402

DTYPES = ("float32", "bfloat16", "float16")
TOLERANCE = 1e-4  # float32 probabilities, device against CPU


def cuda_only(device: torch.device, what: str) -> str | None:
    """Why `what` cannot run here (None when it can)."""
    if device.type != "cuda":
        return f"{what} needs CUDA; this run is on {device.type}"
    return None


def dtype_problem(device: torch.device, dtype: str, cpu_bfloat16: bool) -> str | None:
    if dtype == "bfloat16" and device.type == "cpu" and not cpu_bfloat16:
        return (
            "bfloat16 autocast on a CPU is a CUDA benchmark's step: on the 2-core CPU it was "
            "made on, lite0 took 49-136 s per batch of 4 at bfloat16 against 1.8-3.9 s at "
            "float32 (no fast bfloat16 depthwise kernels); --cpu-bfloat16 runs it anyway"
        )
    if dtype == "float16" and device.type != "cuda":
        return "float16 autocast runs on CUDA only (jaggy refuses --dtype float16 on a CPU)"
    if dtype == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bfloat16"
    return None


class Steps:
    """Runs the steps and keeps every result; a failing step is recorded, not fatal."""

    def __init__(self, args, work: Path):
        self.args, self.work = args, work
        self.results: dict[str, dict] = {}

    def record(self, name: str, result: dict) -> None:
        self.results[name] = result
        shown = {k: v for k, v in result.items() if k in ("status", "reason", "ratio")}
        print(f"== {name}: {json.dumps(shown | summary_of(result))}", flush=True)

    def skip(self, name: str, reason: str) -> None:
        self.record(name, {"status": "skipped", "reason": reason})

    def script(self, name: str, script: str, options: list[str]) -> None:
        """Run a benchmark script in its own process; its --json output is the result."""
        out = self.work / f"{name}.json"
        command = [sys.executable, str(HERE / script), *options, "--json", str(out)]
        command += ["--device", self.args.device, "--model", self.args.model]
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=self.args.timeout
            )
        except subprocess.TimeoutExpired:
            self.record(name, {"status": "failed", "reason": f"timeout {self.args.timeout} s"})
            return
        seconds = round(time.perf_counter() - started, 1)
        log = (done.stdout + done.stderr)[-4000:]
        if done.returncode != 0 or not out.is_file():
            self.record(name, {"status": "failed", "reason": log[-1500:], "seconds": seconds})
            return
        result = json.loads(out.read_text())
        self.record(name, {"status": "ok", "seconds": seconds, **result, "log_tail": log})

    def check(self, name: str, function) -> None:
        started = time.perf_counter()
        try:
            result = function()
        except Exception as exc:  # the record says what broke; the other steps still run
            result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        result.setdefault("status", "ok")
        result["seconds"] = round(time.perf_counter() - started, 1)
        self.record(name, result)


def summary_of(result: dict) -> dict:
    """The ratios of a benchmark's JSON, for the console."""
    out = {}
    for part in ("fixed", "auto"):
        if isinstance(result.get(part), dict) and "ratio" in result[part]:
            out[f"{part}_ratio"] = round(result[part]["ratio"], 3)
    if "ratio_vs_eager" in result.get("auto", {}):  # against the best bare eager loop
        out["auto_ratio_vs_eager"] = round(result["auto"]["ratio_vs_eager"], 3)
    if "ratio_without_probe" in result.get("auto", {}):
        out["auto_ratio_without_probe"] = round(result["auto"]["ratio_without_probe"], 3)
    for key in ("ratio_min", "agree", "views", "equal", "max_abs_difference", "backoff"):
        if key in result:
            out[key] = result[key]
    return out


def audit_rows(folder: Path, out: Path, device: str, **options):
    import pyarrow.parquet as pq

    from jaggy.engine import AuditConfig, run_audit

    config = AuditConfig(
        model=options.pop("model"),
        data=str(folder),
        protocols=["crop", "black"],
        steps=10,
        sizes=[140],
        device=device,
        out=str(out),
        **options,
    )
    result = run_audit(config, progress=False)
    rows = pq.read_table(out / "predictions.parquet").to_pandas()
    return result, rows.sort_values(["image_id", "protocol", "view"]).reset_index(drop=True)


def compare_rows(a, b) -> dict:
    import numpy as np

    same_top1 = int((a.top1.to_numpy() == b.top1.to_numpy()).sum())
    difference = float(np.abs(np.stack(a.top5_probs) - np.stack(b.top5_probs)).max())
    return {
        "views": len(a),
        "same_top1": same_top1,
        "max_abs_difference": difference,
        "equal": bool(len(a) == len(b) == same_top1 and difference <= TOLERANCE),
    }


def device_against_cpu(args, folder: Path, work: Path) -> dict:
    """float32 rows on the device and on the CPU, same configuration."""
    common = {"model": args.model, "batch_size": 16, "memory_format": "contiguous"}
    _, on_device = audit_rows(folder, work / "f32-device", args.device, **common)
    _, on_cpu = audit_rows(folder, work / "f32-cpu", "cpu", **common)
    return {**compare_rows(on_device, on_cpu), "tolerance": TOLERANCE}


def out_of_memory_backoff(args, folder: Path, work: Path) -> dict:
    """Cap this process's CUDA memory below a large batch's needs; the run must back off
    and end with the rows an uncapped run gives at the batch size it ended with."""
    device = resolve_device(args.device)
    total = torch.cuda.get_device_properties(device).total_memory
    cap = 0.5 * 2**30  # bytes: lite0's weights and a few dozen views, not a thousand
    folder = photo_folder(work / "oom-images", 64)
    views = 20 * 64  # one chunk: the first batch holds every view
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total), device)
    try:
        capped, rows = audit_rows(
            folder, work / "oom", args.device, model=args.model, batch_size=views, chunk_images=64
        )
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        torch.cuda.empty_cache()
    backoff = capped.manifest.oom_backoff
    if not backoff:
        return {"status": "failed", "reason": f"no back-off under a {cap / 2**30:.1f} GiB cap"}
    final = backoff[-1]["to"]
    _, free = audit_rows(
        folder, work / "free", args.device, model=args.model, batch_size=final, chunk_images=64
    )
    return {
        "cap_gib": round(cap / 2**30, 2),
        "backoff": [f"{e['from']}->{e['to']}" for e in backoff],
        **compare_rows(rows, free),
    }


def two_ranks(args, folder: Path, work: Path) -> dict:
    """`torchrun --nproc-per-node 2` on two GPUs against one process: the same rows."""
    import pyarrow.parquet as pq

    outputs = {}
    for ranks in (1, 2):
        out = work / f"ranks{ranks}"
        command = [sys.executable]
        if ranks > 1:
            command += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        command += ["-m", "jaggy", "audit", args.model, str(folder), "--out", str(out)]
        command += ["--protocol", "crop", "--protocol", "black", "--size", "140"]
        command += ["--batch-size", "32", "--chunk-images", "2", "--device", "cuda"]
        command += ["--no-progress"]
        subprocess.run(command, check=True, capture_output=True, timeout=args.timeout)
        rows = pq.read_table(out / "predictions.parquet").to_pandas()
        outputs[ranks] = rows.sort_values(["image_id", "protocol", "view"]).reset_index(drop=True)
    return compare_rows(outputs[2], outputs[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="jaggy:efficientnet_lite0")
    parser.add_argument("--out", default=str(HERE / "gpu-results.json"))
    parser.add_argument("--quick", action="store_true", help="small benchmarks (a smoke run)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per step")
    parser.add_argument("--cpu-bfloat16", action="store_true", help="bfloat16 steps on a CPU too")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    work = Path(tempfile.mkdtemp(prefix="jaggy-gpu-"))
    folder = photo_folder(work / "images", 8)
    steps = Steps(args, work)
    started = time.perf_counter()
    gpu = device.type == "cuda"
    if args.quick:  # every step runs, on a few views: proves the script, not the speed
        sizes = ["--images", "2", "--fixed-images", "2", "--rounds", "1"]
        sweep = ["--sweep-seconds", "0.05", "--sweep-rounds", "1", "--finalists", "1"]
        sweep += ["--max-batch", "8"]
        reference = ["--images", "2", "--rounds", "1", "--warmup", "0"]
    else:
        photos = "256" if gpu else "64"
        sizes = ["--images", photos, "--fixed-images", photos, "--rounds", "3"]
        sweep = []
        reference = ["--images", "96" if gpu else "24", "--rounds", "3"]
    batch = ["--batch-size", "256" if gpu else ("8" if args.quick else "32")]

    for dtype in DTYPES:
        problem = dtype_problem(device, dtype, args.cpu_bfloat16)
        for name, script, options in (
            (f"overhead_{dtype}", "overhead.py", [*sizes, *batch, *sweep]),
            (f"reference_{dtype}", "reference.py", reference),
        ):
            if problem:
                steps.skip(name, problem)
            else:
                steps.script(name, script, [*options, "--dtype", dtype])
    steps.script(
        "overhead_channels_last",
        "overhead.py",
        [*sizes, *batch, "--memory-format", "channels_last", "--skip-sweep"],
    )
    steps.script("overhead_compiled", "overhead.py", [*sizes, *batch, "--compile", "--skip-sweep"])
    steps.script("reference_compiled", "reference.py", [*reference, "--compile"])

    problem = cuda_only(device, "a memory cap (torch.cuda.set_per_process_memory_fraction)")
    if problem:
        steps.skip("oom_backoff", problem)
    else:
        steps.check("oom_backoff", lambda: out_of_memory_backoff(args, folder, work))
    gpus = torch.cuda.device_count() if gpu else 0
    if gpus < 2:
        steps.skip("torchrun_2_gpus", f"needs two GPUs; this machine has {gpus}")
    else:
        steps.check("torchrun_2_gpus", lambda: two_ranks(args, folder, work))
    if gpu:
        steps.check("float32_device_vs_cpu", lambda: device_against_cpu(args, folder, work))
    else:
        steps.skip("float32_device_vs_cpu", "the device is the CPU itself")

    results = {
        "machine": machine(device),
        "model": args.model,
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "targets": {
            "overhead": 0.95,
            "reference": 10.0 if gpu else 1.5,
            "float32_tolerance": TOLERANCE,
        },
        "steps": steps.results,
    }
    Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    failed = [n for n, r in steps.results.items() if r["status"] == "failed"]
    print(f"\nresults: {args.out} ({len(steps.results)} steps, failed: {failed or 'none'})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(with_load_average(main))
