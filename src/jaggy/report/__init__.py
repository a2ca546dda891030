"""The HTML report of one or more result folders (`jaggy report RUN_DIR ... --out FILE`).

One self-contained file: the headline table with CIs, P(c*) versus shift curves beside the
views, the image x shift wall sorted by jaggedness, scale curves, comparisons across runs,
and the sections of `jaggy layers` / `jaggy compare` outputs when present. HTML comes from
Jinja2 templates (autoescaped), figures from `jaggy.figures` (inline SVG).
Sections register themselves (`register_section`), so adding one is one function in one
module plus its template.
"""

from ._report import ReportLimits, render_report, write_report

__all__ = ["ReportLimits", "render_report", "write_report"]
