"""Argument checks that several commands share (run before any work)."""

from __future__ import annotations

import math
import os

from .errors import ArgumentError

SEED_MAX = 2**32 - 1  # numpy's legacy seeding, used by user code, takes no more


def check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ArgumentError(f"--seed must be a whole number from 0 to {SEED_MAX} (got {seed!r})")


def check_out(out: str | os.PathLike | None, what: str = "an output folder") -> None:
    """`--out ""` would write into the current folder: refuse it."""
    if out is None or not str(os.fspath(out)).strip():
        raise ArgumentError(f"--out is empty; name {what}")


def check_finite(value, argument: str, *, positive: bool = False, minimum=None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ArgumentError(f"{argument} must be a finite number (got {value!r})")
    if positive and not value > 0:
        raise ArgumentError(f"{argument} must be positive (got {value!r})")
    if minimum is not None and value < minimum:
        raise ArgumentError(f"{argument} must be at least {minimum} (got {value!r})")
