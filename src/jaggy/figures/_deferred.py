"""Figures drawn later, all together: inside `deferred_figures()`, a figure function marked
`@deferrable` records its call and returns a placeholder; `resolve` then draws every recorded
figure (spread over processes, see `_parallel`) and puts each SVG in its placeholder's place.

A page with many figures is thus assembled first and drawn in one parallel pass, with the same
bytes as drawing each figure where it is called. Outside the context the functions draw at once.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ._parallel import run_calls, worker_count

# Figures are written in about a millisecond or two each: a worker (a fork of a process that
# holds torch and the run) pays for itself only with a hundred or so to draw.
FIGURES_PER_WORKER = 100

_PENDING: ContextVar[DeferredFigures | None] = ContextVar("jaggy_deferred_figures", default=None)


class DeferredFigures:
    """The figure calls recorded so far; `resolve(text)` draws them into `text`."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], str]] = []
        # A placeholder that no data can spell (it never reaches the output): NUL bytes pass
        # escaping unchanged, and the nonce is new for every page.
        self._nonce = secrets.token_hex(8)
        self._pattern = re.compile(f"\x00figure-{self._nonce}-(\\d+)\x00")

    def placeholder(self, call: Callable[[], str]) -> str:
        self.calls.append(call)
        return f"\x00figure-{self._nonce}-{len(self.calls) - 1}\x00"

    def resolve(self, text: str, workers: int | None = None) -> str:
        """`text` with every placeholder replaced by its figure's SVG (a recorded figure
        whose placeholder is not in `text` is not drawn)."""
        shown = sorted({int(i) for i in self._pattern.findall(text)})
        if workers is None:
            workers = max(1, min(worker_count(len(shown)), len(shown) // FIGURES_PER_WORKER))
        svgs = dict(zip(shown, run_calls([self.calls[i] for i in shown], workers), strict=True))
        return self._pattern.sub(lambda match: svgs[int(match.group(1))], text)


def deferrable(function: Callable[..., str]) -> Callable[..., str]:
    """Mark a figure function (returning SVG text) as one that `deferred_figures` may defer."""

    @functools.wraps(function)
    def call(*args, **kwargs) -> str:
        pending = _PENDING.get()
        if pending is None:
            return function(*args, **kwargs)
        return pending.placeholder(functools.partial(function, *args, **kwargs))

    return call


@contextmanager
def deferred_figures() -> Iterator[DeferredFigures]:
    """Within the block, `@deferrable` figures return placeholders (see `DeferredFigures`)."""
    pending = DeferredFigures()
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)
