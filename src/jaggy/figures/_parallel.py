"""Independent work (figures, thumbnails) spread over a few forked processes.

A report draws dozens of figures that share nothing, after the audit has finished, so the
machine's cores are free. Workers are forked once the work is known: they inherit the calls to
make (functions and arguments are never pickled), and only the results travel back, in the
order of the calls, so the output does not depend on which worker drew what. Where processes
cannot be forked (Windows, macOS, a single core) the same calls run one after another here.

A forked worker runs torch on one thread: the OpenMP pool of a process that has run torch on
several threads (the audit's forward) does not survive a fork, and a worker that used it would
wait forever. Should a worker still hang or die, the calls not returned run here instead.

The caller works too once it asks for the results: it makes the calls that no worker has
started yet, from the last one back, while the workers go on from the front (each call is
claimed once, in memory shared with the workers). Work that the caller started early and
then waits for ends sooner, without a worker to spare for that tail.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

MAX_WORKERS = 4  # a few: the work is seconds at most, and each worker costs a fork
CALL_TIMEOUT_S = 300.0  # a result not back this long after the previous one: do the rest here

# What forked workers run, by pool (set just before forking): a pool that draws while the
# caller goes on (`start_calls`) keeps its calls apart from those of a pool forked later.
# With the calls, who has claimed each one (shared with the workers): 0 nobody yet, 1 a
# worker, 2 the caller.
_CALLS: dict[int, tuple[Sequence[Callable[[], Any]], Any]] = {}
_BY_WORKER, _BY_CALLER = 1, 2


class _MadeByCaller:
    """What a worker returns for a call that the caller claimed first."""


def worker_count(calls: int) -> int:
    """Processes worth starting for `calls` independent calls (1: run them here)."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return 1  # fork is only safe with the libraries jaggy loads on Linux
    if multiprocessing.current_process().daemon:
        return 1  # a worker itself (of this pool, or of a caller's): it may not start any
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores, calls))


def _start_worker() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:  # see the module doc: the parent's thread pool is gone here
        torch.set_num_threads(1)


def _run(task: tuple[int, int]) -> Any:
    pool, index = task
    calls, claims = _CALLS[pool]
    if not _claim(claims, index, _BY_WORKER):
        return _MadeByCaller()
    return calls[index]()


def _claim(claims, index: int, by: int) -> bool:
    with claims.get_lock():
        if claims[index]:
            return False
        claims[index] = by
        return True


class PendingCalls:
    """Calls being made in forked workers while the caller does other work; `results()`
    waits for them (see `run_calls`)."""

    def __init__(self, calls: Sequence[Callable[[], Any]], workers: int):
        self.calls = calls
        self._pool = None
        self._returned = None
        self._token = id(self)
        if workers <= 1:
            return
        context = multiprocessing.get_context("fork")
        self._claims = context.Array("b", len(calls))
        _CALLS[self._token] = (calls, self._claims)
        try:
            self._pool = context.Pool(workers, initializer=_start_worker)
        except OSError:  # no processes left to start: the calls are made in results()
            del _CALLS[self._token]
            return
        tasks = [(self._token, i) for i in range(len(calls))]
        self._returned = self._pool.imap(_run, tasks, chunksize=1)

    def results(self) -> list[Any]:
        """The results, in the order of the calls. An exception in a call is raised here."""
        results: list[Any] = []
        made: dict[int, Any] = {}  # by this process
        if self._pool is not None:
            try:
                with self._pool:
                    for index in reversed(range(len(self.calls))):  # the workers' tail
                        if not _claim(self._claims, index, _BY_CALLER):
                            break  # this one and those before it are the workers'
                        made[index] = self.calls[index]()
                    for index in range(len(self.calls)):
                        result = self._returned.next(timeout=CALL_TIMEOUT_S)
                        results.append(made[index] if index in made else result)
            except multiprocessing.TimeoutError:
                self._pool.terminate()
            finally:
                self._pool = None
                _CALLS.pop(self._token, None)
        rest = range(len(results), len(self.calls))
        return results + [made[i] if i in made else self.calls[i]() for i in rest]


def start_calls(calls: Sequence[Callable[[], Any]], workers: int | None = None) -> PendingCalls:
    """Start `[call() for call in calls]` in forked workers and return at once; where no
    workers are worth starting, the calls are made when the results are asked for."""
    workers = worker_count(len(calls)) if workers is None else max(1, min(workers, len(calls)))
    return PendingCalls(calls, workers)


def run_calls(calls: Sequence[Callable[[], Any]], workers: int | None = None) -> list[Any]:
    """`[call() for call in calls]`, the calls spread over forked worker processes.

    Args:
        calls: functions without arguments (closures); their results must pickle.
        workers: processes to use (default: `worker_count(len(calls))`; 1: no processes).

    Returns:
        The results, in the order of `calls`. An exception in a call is raised here.
    """
    return start_calls(calls, workers).results()
