"""A model against its remedies, on the same views: metrics, speed and size side by side."""

from ._compare import CompareResult, Variant, compare_variants, parse_variant, time_forward

__all__ = ["CompareResult", "Variant", "compare_variants", "parse_variant", "time_forward"]
