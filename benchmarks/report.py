"""The report and the P(c*) PNGs of one demo run: this version against an earlier one.

`jaggy demo` ends with `write_shift_curve_pngs` (one PNG per photo) and `write_report` (the
HTML page: inline SVG figures, the views' thumbnails: read from the run's thumbnails/ where
the audit wrote them, else re-created from the image files). This script makes one
demo-like run folder (the demo's protocols, sizes and model on the sample photos; or takes
`--run`), then times both steps in fresh processes, interleaved round by round:

- `new`: this checkout (`src/`), figures and thumbnails spread over worker processes, the PNGs
  drawn while the report is written, as `jaggy demo` does (then "pngs" is the wait for them
  after the report);
- `new-1p`: the same with every call made in the one process (`MAX_WORKERS = 1`);
- `old`: the sources of `--old` (a git revision, extracted with `git archive`).

Each process first imports what the demo's process already holds (jaggy, torch, matplotlib,
timm through the class names) so that only the two steps are timed, and writes its own output
folder (nothing is reused between processes). Printed: seconds per step and per figure, the
ratios old / new of each round and their median (the seconds the audit spent writing
thumbnails/ added to this version's where `--old` has no thumbnails/ to read and re-makes
them), the page sizes, whether every process of one version wrote the same bytes, whether
both versions did (else whether the page and the PNGs' pixels are the same), and the load
average.

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
from jaggy.report import _curve_pngs
names = imagenet_class_names()  # the demo's process has timm and the names loaded
if sys.argv[4] == "1":
    from jaggy.figures import _parallel
    _parallel.MAX_WORKERS = 1
run, out = Path(sys.argv[2]), Path(sys.argv[3])
started = time.perf_counter()
if hasattr(_curve_pngs, "start_shift_curve_pngs"):  # as the demo does: the PNGs drawn meanwhile
    pending = _curve_pngs.start_shift_curve_pngs(run, out / "figures", names)
    page = write_report([run], out / "report.html")
    middle = time.perf_counter()
    pngs = pending.wait()  # "pngs": the wait for them after the report
    ended = time.perf_counter()
    pngs_s, report_s = ended - middle, middle - started
else:
    pngs = _curve_pngs.write_shift_curve_pngs(run, out / "figures", names)
    middle = time.perf_counter()
    page = write_report([run], out / "report.html")
    ended = time.perf_counter()
    pngs_s, report_s = middle - started, ended - middle
html = page.read_text(encoding="utf-8")
print(json.dumps({
    "pngs_s": pngs_s, "report_s": report_s, "n_pngs": len(pngs),
    "n_svgs": html.count("<svg"), "html_bytes": len(html.encode("utf-8")),
    "html": str(page), "png_paths": [str(p) for p in pngs],
}))
"""


def make_run(folder: Path) -> tuple[Path, float | None]:
    """A run of `jaggy demo`'s configuration (its protocols, sizes, model, sample photos), and
    the seconds its audit spent writing thumbnails/ (None for a version that writes none):
    work moved from the report into the audit, which the ratios below must count."""
    import time

    from jaggy.cli.demo import DEMO_PROTOCOLS, DEMO_SIZES
    from jaggy.engine import AuditConfig, run_audit

    spent = [0.0]
    try:
        from jaggy.results._thumbnails import ImageThumbnails
    except ImportError:
        ImageThumbnails = None
    else:
        for name in ("add", "write"):
            real = getattr(ImageThumbnails, name)

            def timed(self, *args, _real=real, **kwargs):
                start = time.perf_counter()
                try:
                    return _real(self, *args, **kwargs)
                finally:
                    spent[0] += time.perf_counter() - start

            setattr(ImageThumbnails, name, timed)

    config = AuditConfig(
        model="jaggy:efficientnet_lite0",
        samples=True,
        protocols=list(DEMO_PROTOCOLS),
        sizes=list(DEMO_SIZES),
        out=str(folder),
    )
    run_audit(config, progress=False)
    return folder, (spent[0] if ImageThumbnails is not None else None)


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


def png_pixels(result: dict) -> list[bytes]:
    """The PNGs' pixels as RGBA (the same picture saved another way compares equal)."""
    from PIL import Image

    pixels = []
    for path in result["png_paths"]:
        with Image.open(path) as image:
            pixels.append(image.convert("RGBA").tobytes())
    return pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", default="760ccaf", help="git revision to compare with")
    parser.add_argument("--run", type=Path, help="a finished demo folder (default: make one)")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="jaggy-report-bench-") as tmp:
        tmp = Path(tmp)
        run, audit_thumbnails = (args.run, None) if args.run else make_run(tmp / "run")
        if audit_thumbnails is not None:
            print(f"the audit spent {audit_thumbnails:.2f} s writing thumbnails/", flush=True)
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
            new, old = results["new"][0], results["old"][0]
            same = outputs(new) == outputs(old)
            print(f"this version wrote the same page and PNGs as --old: {same}")
            if not same:
                page = Path(new["html"]).read_bytes() == Path(old["html"]).read_bytes()
                print(
                    f"  the same page: {page}; the PNGs' pixels the same: "
                    f"{png_pixels(new) == png_pixels(old)}"
                )
            # Counted against this version, unless --old read the same stored thumbnails.
            old_reads_them = (versions["old"][0] / "jaggy" / "results" / "_thumbnails.py").is_file()
            moved = 0.0 if old_reads_them else audit_thumbnails or 0.0
            for name in ("new", "new-1p"):
                ratios = [
                    (o["pngs_s"] + o["report_s"]) / (n["pngs_s"] + n["report_s"] + moved)
                    for o, n in zip(results["old"], results[name], strict=True)
                ]
                print(
                    f"old / {name}{' (+ the audit thumbnails)' if moved else ''}: "
                    f"{statistics.median(ratios):.1f}x "
                    f"(rounds: {', '.join(f'{x:.1f}' for x in ratios)})"
                )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
