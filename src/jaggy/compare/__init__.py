"""A model against its remedies, on the same views: metrics, speed and size side by side."""

from ._compare import CompareResult

__all__ = ["CompareResult"]
