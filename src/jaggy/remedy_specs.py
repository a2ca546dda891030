"""Validate remedy specs before any work (the remedies themselves live in jaggy.remedies)."""

from __future__ import annotations

from .errors import ArgumentError


def validate_remedies(specs: list[str]) -> None:
    """Raise ArgumentError for an unknown remedy spec; no-op when none are given."""
    if not specs:
        return
    try:
        from .remedies import parse_remedy
    except ImportError as exc:
        raise ArgumentError("remedies are not available in this install") from exc
    for spec in specs:
        parse_remedy(spec)
