"""Where an output may be written: only regular files. A device, FIFO, socket or folder at the
path is refused (replacing `/dev/null` by a file, or a FIFO by a file nobody reads, is never
what the user meant); a symbolic link is written through, so the link stays and the file it
points to is replaced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import ArgumentError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(path: str | Path) -> str | None:
    """What `path` is when it exists and is not a regular file (following links)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def output_target(path: str | Path) -> Path:
    """The regular file that writing `path` replaces: `path`, or the file a link at `path`
    points to. Raises ArgumentError for anything that is not (or would not be) a regular file."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    kind = _kind(target)
    if kind is None:
        return target
    through = f" (the link '{path}' points to '{target}')" if target != path else ""
    if kind == "a folder":
        raise ArgumentError(
            f"'{path}' is a folder{through}; give the path of a file to write, such as "
            f"'{path / 'report.html'}'"
        )
    raise ArgumentError(
        f"'{path}' is {kind}{through}; jaggy writes its outputs only to regular files, so "
        "give the path of a file"
    )
