"""One run at a time per output folder: an exclusive advisory lock held while a run writes.

The lock is a POSIX record lock (`fcntl.lockf`) on `OUT/.jaggy.lock`. The kernel releases it
when the process ends in any way (SIGKILL included), so an interrupted run leaves no stale
lock to clean up, and, unlike `flock`, it is not inherited by the decoding workers a run
forks (a killed run's lingering workers hold nothing). The file itself stays (removing it would
let a second run lock a different file of the same name); it holds the pid of the run that has
the lock, so that a refusal can name that run. POSIX locks do not exclude the process that
holds them, so the folders this process holds are also kept in `_HELD`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ArgumentError, JaggyError

LOCK_FILE = ".jaggy.lock"
_HELD: set[str] = set()  # real paths of the lock files this process holds

try:
    import fcntl
except ImportError:  # not POSIX: no lock (documented), everything else still works
    fcntl = None


class RunLock:
    """`with RunLock(out):` holds OUT for this process, or raises ArgumentError naming the
    pid of the run that holds it."""

    def __init__(self, out: str | Path, command: str = "run"):
        self.path = Path(out) / LOCK_FILE
        self.command = command
        self._fd: int | None = None
        self._key = ""

    def acquire(self) -> RunLock:
        if fcntl is None or self._fd is not None:
            return self
        key = os.path.realpath(self.path)
        if key in _HELD:
            raise ArgumentError(
                f"'{self.path.parent}' is being written by another jaggy {self.command} "
                f"(pid {os.getpid()}, this process); wait for it to finish, or choose another --out"
            )
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise JaggyError(
                f"cannot write into the output folder '{self.path.parent}': "
                f"{exc.strerror or exc}; choose a writable --out"
            ) from exc
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise ArgumentError(
                f"'{self.path.parent}' is being written by another jaggy {self.command}{who}; "
                "wait for it to finish, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd, self._key = fd, key
        _HELD.add(key)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None
            _HELD.discard(self._key)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
