"""Independent work (figures, thumbnails) spread over a few forked processes.

A report draws dozens of figures that share nothing, after the audit has finished, so the
machine's cores are free. Workers are forked once the work is known: they inherit the calls to
make (functions and arguments are never pickled), and only the results travel back, in the
order of the calls, so the output does not depend on which worker drew what. Where processes
cannot be forked (Windows, macOS, a single core) the same calls run one after another here.

A forked worker runs torch on one thread: the OpenMP pool of a process that has run torch on
several threads (the audit's forward) does not survive a fork, and a worker that used it would
wait forever. Should a worker still hang or die, the calls not returned run here instead.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

MAX_WORKERS = 4  # a few: the work is seconds at most, and each worker costs a fork
CALL_TIMEOUT_S = 300.0  # a result not back this long after the previous one: do the rest here

_CALLS: Sequence[Callable[[], Any]] = ()  # what forked workers run (set just before forking)


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


def _run(index: int) -> Any:
    return _CALLS[index]()


def run_calls(calls: Sequence[Callable[[], Any]], workers: int | None = None) -> list[Any]:
    """`[call() for call in calls]`, the calls spread over forked worker processes.

    Args:
        calls: functions without arguments (closures); their results must pickle.
        workers: processes to use (default: `worker_count(len(calls))`; 1: no processes).

    Returns:
        The results, in the order of `calls`. An exception in a call is raised here.
    """
    global _CALLS
    workers = worker_count(len(calls)) if workers is None else max(1, min(workers, len(calls)))
    if workers <= 1:
        return [call() for call in calls]
    _CALLS = calls
    try:
        context = multiprocessing.get_context("fork")
        try:
            pool = context.Pool(workers, initializer=_start_worker)
        except OSError:  # no processes left to start: do the work here
            return [call() for call in calls]
        results: list[Any] = []
        with pool:
            returned = pool.imap(_run, range(len(calls)), chunksize=1)
            try:
                for _ in calls:
                    results.append(returned.next(timeout=CALL_TIMEOUT_S))
            except multiprocessing.TimeoutError:
                pool.terminate()
        return results + [call() for call in calls[len(results) :]]
    finally:
        _CALLS = ()
