"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ._targets import output_target
from .errors import JaggyError

RESUME_HINT = (
    "free some space or make the folder writable, then rerun with --resume (the "
    "chunks committed so far are kept)"
)


def atomic_write(
    path: str | Path, write: Callable[[str], None], *, hint: str = RESUME_HINT
) -> None:
    """Call write(tmp_path) on a temporary file beside `path`, fsync it, then rename it over
    `path` (the file a link at `path` points to; a device, FIFO or folder there is refused).
    Errors (disk full, read-only folder) become a JaggyError naming the file; the
    previous file, if any, stays intact, and so does every other file of the folder. `hint`
    ends the error message: what the user should do."""
    path = output_target(path)  # a regular file: a link is written through, a device refused
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except OSError as exc:
        if tmp is not None:
            _remove_quietly(tmp)
        raise JaggyError(f"cannot write {path}: {exc.strerror or exc}; {hint}") from exc
    except BaseException:
        if tmp is not None:
            _remove_quietly(tmp)
        raise


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str, *, hint: str = RESUME_HINT) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    atomic_write(path, write, hint=hint)


def atomic_write_json(path: str | Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
