"""The report and the P(c*) PNGs of one demo run: this version against an earlier one.

`jaggy demo` ends with `write_shift_curve_pngs` (one PNG per photo) and `write_report` (the
HTML page: inline SVG figures, the views re-created as thumbnails). This script makes one
demo-like run folder (the demo's protocols, sizes and model on the sample photos; or takes
`--run`), then times both steps in fresh processes, interleaved round by round:

- `new`: this checkout (`src/`), figures and thumbnails spread over worker processes;
- `new-1p`: the same with every call made in the one process (`MAX_WORKERS = 1`);
- `old`: the sources of `--old` (a git revision, extracted with `git archive`).

Each process first imports what the demo's process already holds (jaggy, torch, matplotlib,
timm through the class names) so that only the two steps are timed, and writes its own output
folder (nothing is reused between processes). Printed: seconds per step and per figure, the
ratios old / new of each round and their median, the page sizes, whether every process of one
version wrote the same bytes, and the load average.

    .venv/bin/python benchmarks/report.py [--rounds 3] [--old 760ccaf] [--run DEMO_FOLDER]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run in a child process: argv = [src folder, run folder, output folder, one process (0/1)].
CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import jaggy
from jaggy.models import imagenet_class_names
from jaggy.report import write_report
from jaggy.report._curve_pngs import write_shift_curve_pngs
names = imagenet_class_names()  # the demo's process has timm and the names loaded
if sys.argv[4] == "1":
    from jaggy.figures import _parallel
    _parallel.MAX_WORKERS = 1
run, out = Path(sys.argv[2]), Path(sys.argv[3])
started = time.perf_counter()
pngs = write_shift_curve_pngs(run, out / "figures", names)
middle = time.perf_counter()
page = write_report([run], out / "report.html")
ended = time.perf_counter()
html = page.read_text(encoding="utf-8")
print(json.dumps({
    "pngs_s": middle - started, "report_s": ended - middle, "n_pngs": len(pngs),
    "n_svgs": html.count("<svg"), "html_bytes": len(html.encode("utf-8")),
    "html": str(page), "png_paths": [str(p) for p in pngs],
}))
"""


def make_run(folder: Path) -> Path:
    """A run of `jaggy demo`'s configuration (its protocols, sizes, model, sample photos)."""
    from jaggy.cli.demo import DEMO_PROTOCOLS, DEMO_SIZES
    from jaggy.engine import AuditConfig, run_audit

    config = AuditConfig(
        model="jaggy:efficientnet_lite0",
        samples=True,
        protocols=list(DEMO_PROTOCOLS),
        sizes=list(DEMO_SIZES),
        out=str(folder),
    )
    run_audit(config, progress=False)
    return folder


def old_sources(revision: str, into: Path) -> Path:
    """The `src/` folder of `revision`, extracted from this repository."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def time_version(src: Path, run: Path, out: Path, one_process: bool) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(run), str(out), "1" if one_process else "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    if done.returncode != 0:
        raise SystemExit(f"{src}: the timed process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def outputs(result: dict) -> tuple[bytes, ...]:
    return (Path(result["html"]).read_bytes(), *(Path(p).read_bytes() for p in result["png_paths"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", default="760ccaf", help="git revision to compare with")
    parser.add_argument("--run", type=Path, help="a finished demo folder (default: make one)")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="jaggy-report-bench-") as tmp:
        tmp = Path(tmp)
        run = args.run or make_run(tmp / "run")
        versions = {"new": (ROOT / "src", False), "new-1p": (ROOT / "src", True)}
        if args.old:
            versions["old"] = (old_sources(args.old, tmp), False)
        results: dict[str, list[dict]] = {name: [] for name in versions}
        names = list(versions)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]  # interleaved: A B C, C B A, ...
            for name in order:
                src, one_process = versions[name]
                result = time_version(src, run, tmp / f"{name}-{r}", one_process)
                results[name].append(result)
                print(
                    f"round {r + 1} {name:7s} pngs {result['pngs_s']:6.2f} s  report "
                    f"{result['report_s']:6.2f} s  (load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
        print()
        for name, rows in results.items():
            total = [row["pngs_s"] + row["report_s"] for row in rows]
            first = rows[0]
            figures = first["n_svgs"] + first["n_pngs"]
            same = all(outputs(row) == outputs(first) for row in rows[1:])
            print(
                f"{name:7s} pngs {statistics.median(row['pngs_s'] for row in rows):.2f} s, report "
                f"{statistics.median(row['report_s'] for row in rows):.2f} s, total "
                f"{statistics.median(total):.2f} s (median of {len(rows)}); "
                f"{statistics.median(total) / figures * 1000:.1f} ms per figure "
                f"({first['n_pngs']} PNGs + {first['n_svgs']} SVGs); page "
                f"{first['html_bytes'] / 1e6:.2f} MB; same bytes every round: {same}"
            )
        if "old" in results:
            for name in ("new", "new-1p"):
                ratios = [
                    (o["pngs_s"] + o["report_s"]) / (n["pngs_s"] + n["report_s"])
                    for o, n in zip(results["old"], results[name], strict=True)
                ]
                print(
                    f"old / {name}: {statistics.median(ratios):.1f}x "
                    f"(rounds: {', '.join(f'{x:.1f}' for x in ratios)})"
                )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
