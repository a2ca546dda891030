"""Helpers of the misuse tests (a plain module, not a conftest, so that `conftest` stays
the suite's own): run the CLI, and prove that nothing of the user's was lost."""

from __future__ import annotations

import hashlib
from pathlib import Path

from jaggy.cli import main

TINY_AUDIT = ["--steps", "2", "--batch-size", "4", "--no-progress", "--threads", "1"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (not following links) -> sha256 of its bytes."""
    files = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.is_symlink():
            files[path.relative_to(folder).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return files


def run_jaggy(capsys, *args) -> tuple[int, str]:
    """Run `jaggy ARGS...`; returns (exit code, stderr). argparse errors count as exit 2."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err
