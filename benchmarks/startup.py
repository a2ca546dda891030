"""How quickly jaggy answers: `import jaggy`, `jaggy --help`, `jaggy audit --help` and a bad
argument, this version against an earlier one, with `import torch` as the floor.

Each command runs in a fresh process (nothing is cached between them but what the operating
system caches for every process alike), interleaved round by round: every round runs each
(version, command) pair once, in an order rotated from round to round, so that a burst of load
from other processes cannot favour one side. The earlier version is a `git worktree` of
`--old` (a commit), run with its own `src/` on PYTHONPATH and the same interpreter and
packages, and removed at the end. `jaggy ARGS` runs as `python -m jaggy ARGS` (the console
script calls the same `jaggy.cli.main`).

Printed: the load average at the start and the end, the median seconds of each command and
version, the median of the round-by-round ratios old / new, each command's seconds above the
`import torch` floor, whether both versions printed the same help and error text (else the
first line where they differ), and the modules whose import costs most in one
`python -X importtime -m jaggy --help` of each version.

    .venv/bin/python benchmarks/startup.py [--rounds 5] [--old f4d07ed]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (arguments of the interpreter, expected exit status)
BAD_ARGUMENT = ["audit", "jaggy:efficientnet_lite0", "--samples", "--steps", "-1", "--out"]
COMMANDS = {
    "import torch": (["-c", "import torch"], 0),
    "import jaggy": (["-c", "import jaggy"], 0),
    "jaggy --help": (["-m", "jaggy", "--help"], 0),
    "jaggy audit --help": (["-m", "jaggy", "audit", "--help"], 0),
    "bad argument (exit 2)": (["-m", "jaggy", *BAD_ARGUMENT, "bad-run"], 2),
}
FLOOR = "import torch"  # jaggy's own dependency: the same for both versions


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def environment(src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "PYTHONPATH": str(src)}


def run_once(args: list[str], src: Path, cwd: Path, expected: int) -> tuple[float, str]:
    """Seconds of one fresh process, and what it printed (checked against its exit status)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=environment(src), cwd=cwd
    )
    seconds = time.perf_counter() - started
    if proc.returncode != expected:
        raise SystemExit(
            f"{' '.join(args)} exited {proc.returncode} (expected {expected}):\n{proc.stderr}"
        )
    return seconds, proc.stdout + proc.stderr


def import_costs(src: Path, cwd: Path, top: int = 8) -> list[tuple[str, float]]:
    """Seconds of import per top-level package (own time summed over its modules) in one
    `python -X importtime -m jaggy --help`."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jaggy", "--help"],
        capture_output=True,
        text=True,
        env=environment(src),
        cwd=cwd,
    )
    costs: dict[str, float] = defaultdict(float)
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            costs[match[2].split(".")[0]] += int(match[1]) / 1e6
    return sorted(costs.items(), key=lambda item: -item[1])[:top]


def first_difference(old: set[str], new: set[str]) -> str:
    """The first line where a text of `old` and one of `new` differ."""
    a, b = (min(texts).splitlines() for texts in (old, new))
    for n, (x, y) in enumerate(zip(a + [""] * len(b), b + [""] * len(a), strict=True)):
        if x != y:
            return f"line {n + 1}: {x!r} -> {y!r}"
    return "between rounds" if min(old) == min(new) else "in line endings only"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--old", default="f4d07ed", help="commit of the earlier version")
    args = parser.parse_args()
    print(f"startup: {args.rounds} rounds, {sys.executable}; {load_average()}")

    with tempfile.TemporaryDirectory(prefix="jaggy-startup-") as tmp:
        tmp = Path(tmp)
        old_tree = tmp / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old_tree), args.old],
            check=True,
            capture_output=True,
        )
        try:
            return measure(args.rounds, {"old": old_tree / "src", "new": ROOT / "src"}, tmp)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)],
                check=True,
                capture_output=True,
            )


def measure(rounds: int, sources: dict[str, Path], tmp: Path) -> int:
    for version, src in sources.items():
        _, where = run_once(["-c", "import jaggy; print(jaggy.__file__)"], src, tmp, 0)
        print(f"  {version}: jaggy from {where.strip()}")
    pairs = [(v, c) for c in COMMANDS for v in (sources if c != FLOOR else ["new"])]
    seconds: dict[tuple[str, str], list[float]] = defaultdict(list)
    printed: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in range(rounds):
        shift = r % len(pairs)
        for version, name in pairs[shift:] + pairs[:shift]:
            cwd = tmp / f"{version}-{r}"  # a fresh folder: the bad argument must write nothing
            cwd.mkdir(exist_ok=True)
            argv, expected = COMMANDS[name]
            took, text = run_once(argv, sources[version], cwd, expected)
            if any(cwd.iterdir()):
                raise SystemExit(f"{version} {name} wrote {sorted(os.listdir(cwd))}")
            seconds[version, name].append(took)
            printed[version, name].add(text)
        print(f"  round {r + 1}: {load_average()}", flush=True)

    floor = statistics.median(seconds["new", FLOOR])
    print(f"\nmedian seconds over {rounds} rounds (fresh processes, interleaved)")
    print(f"{'command':24s} {'old':>7s} {'new':>7s} {'old/new':>8s}  {'new - floor':>11s}  rounds")
    print(f"{FLOOR:24s} {'':7s} {floor:7.2f} {'':8s}  {'(floor)':>11s}")
    for name in COMMANDS:
        if name == FLOOR:
            continue
        old, new = seconds["old", name], seconds["new", name]
        ratios = [o / n for o, n in zip(old, new, strict=True)]
        each = " ".join(f"{x:.1f}" for x in ratios)
        print(
            f"{name:24s} {statistics.median(old):7.2f} {statistics.median(new):7.2f} "
            f"{statistics.median(ratios):7.1f}x  {statistics.median(new) - floor:+10.2f}s  "
            f"{each}"
        )
    for name in COMMANDS:
        if name == FLOOR:
            continue
        old, new = printed["old", name], printed["new", name]
        if old == new and len(new) == 1:
            print(f"  {name}: old and new printed the same text")
        else:  # e.g. an option added since --old changes the help
            print(f"  {name}: old and new printed different texts: {first_difference(old, new)}")
    for version, src in sources.items():
        costs = ", ".join(f"{pkg} {s:.2f}" for pkg, s in import_costs(src, tmp))
        print(f"  {version}, -X importtime of jaggy --help (s per package): {costs}")
    print(load_average())
    return 0


if __name__ == "__main__":
    sys.exit(main())
