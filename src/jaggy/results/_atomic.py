"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half.

Every file jaggy writes goes through `atomic_write`. The temporary file is created with mode
0666 and the user's umask applies, as for any ordinary file (0644 under umask 022), so a
colleague in the same group can read a run on a shared disk.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from ..errors import JaggyError
from ._targets import output_target

RESUME_HINT = (
    "free some space or make the folder writable, then rerun with --resume (the "
    "chunks committed so far are kept)"
)
OUT_HINT = "choose a writable --out"


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
        tmp = _create_temporary(path)
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


def _create_temporary(path: Path) -> str:
    """A new, empty file `.NAME.<random>.tmp` beside `path`, with ordinary permissions (unlike
    `tempfile.mkstemp`, which makes it 0600)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return str(tmp)
    raise FileExistsError(f"no free temporary name beside {path}")


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


def atomic_write_bytes(path: str | Path, data: bytes, *, hint: str = RESUME_HINT) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    atomic_write(path, write, hint=hint)


def atomic_write_text(path: str | Path, text: str, *, hint: str = RESUME_HINT) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), hint=hint)


def atomic_write_json(
    path: str | Path, data, *, hint: str = RESUME_HINT, allow_nan: bool = True
) -> None:
    """JSON (indented, keys in insertion order) written atomically. `allow_nan=False` refuses
    NaN and infinities, which strict JSON readers reject."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str, allow_nan=allow_nan)
    atomic_write_text(path, text + "\n", hint=hint)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
