"""Report sections register themselves; the page shows those whose data is present.

Adding a section is one function in one module of `jaggy.report.sections` and, usually, one
template in `jaggy/report/templates/`:

    @register_section("bias", "Photographer's bias", order=75,
                      present=lambda run_dir: (run_dir / "bias.json").is_file())
    def bias(runs: list[RunFolder], report: Report) -> Markup | None:
        rows = ...  # numbers and strings read from the folders (never markup)
        return render_template("bias.html.j2", rows=rows, chart=svg_markup(line_chart(...)))

`present(run_dir)` decides, per given folder, whether the section applies; `render` receives
only the folders for which it does and returns the section's body: markup from
`render_template` (Jinja2, autoescaped: every value is shown as text), or None to leave the
section out. A plain `str` returned instead is escaped, i.e. shown as text. Figures come from
`jaggy.figures` (inline SVG) and enter a template through `svg_markup`. `order` places the
section on the page (headline 10, comparison 20, curves 30, wall 40, scale 50, layers 60,
compare 70, manifest 90).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Section:
    """A registered section: `name` (element id), `title`, position `order` (ascending)."""

    name: str
    title: str
    order: int
    present: Callable[[Path], bool]
    render: Callable


_SECTIONS: dict[str, Section] = {}


def register_section(name: str, title: str, *, order: int, present: Callable[[Path], bool]):
    """Decorator: register `render(runs, report) -> Markup | None` as a section (registering a
    name again replaces the earlier section)."""

    def wrap(render):
        _SECTIONS[name] = Section(name, title, order, present, render)
        return render

    return wrap


def has_file(*names: str) -> Callable[[Path], bool]:
    """A `present` test: the folder holds any of `names`."""

    def present(run_dir: Path) -> bool:
        return any((Path(run_dir) / name).is_file() for name in names)

    return present


def list_sections() -> list[Section]:
    """Every registered section, in page order."""
    from . import sections as package  # relative: `jaggy.report` is also a function

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.name))
