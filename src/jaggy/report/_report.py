"""Assemble the report: folders -> registered sections -> one self-contained HTML file."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ArgumentError, DataError, JaggyError
from ..figures._deferred import deferred_figures
from ..figures._parallel import run_calls
from ..results._atomic import atomic_write_text
from ..results._files import RUN_FILE
from ..results._thumbnails import SHOWN_VIEWS, read_thumbnails
from ._data import ProtocolViews, RunMetrics, Sequence, read_run_metrics, read_views, spread_pick
from ._registry import list_sections
from ._run import KNOWN_FILES, RunFolder, distinct_labels, read_json
from ._templates import render_template
from ._views import ViewMaker


@dataclass(frozen=True)
class ReportLimits:
    """Caps that keep a report of a big run small and quick (the page states each cap it hits).

    wall_images: rows of each wall (images spread evenly over the jaggedness ranking).
    curve_images: images whose P(c*) curves and views are drawn, per run.
    thumbnails: views shown per image and protocol (evenly spaced when there are more).
    listed_inputs: skipped/converted inputs listed by name.
    """

    wall_images: int = 64
    curve_images: int = 6
    thumbnails: int = SHOWN_VIEWS  # those the audit stores (results._thumbnails)
    listed_inputs: int = 200

    def __post_init__(self) -> None:
        if self.wall_images < 1:
            raise ArgumentError(f"--wall-images must be at least 1 (got {self.wall_images})")
        for name in ("curve_images", "thumbnails", "listed_inputs"):
            if getattr(self, name) < 0:
                flag = "--" + name.replace("_", "-")
                raise ArgumentError(f"{flag} must be 0 or more (got {getattr(self, name)})")


class Report:
    """What sections share: the folders, the limits, and per-run data read once on demand."""

    def __init__(self, runs: list[RunFolder], limits: ReportLimits):
        self.runs = runs
        self.limits = limits
        self._metrics: dict[int, RunMetrics] = {}
        self._views: dict[int, tuple[dict[str, ProtocolViews], dict]] = {}
        self._makers: dict[int, ViewMaker] = {}
        self._thumbs: dict[tuple, list | str] = {}
        self._curve_images: dict[int, list[int]] = {}
        self._stored: dict[tuple[int, int], dict] = {}  # thumbnails the audit wrote
        self._run_ids: dict[int, str | None] = {}

    def metrics(self, run: RunFolder) -> RunMetrics:
        """The run's metrics.parquet: every per-image number the report shows."""
        if run.index not in self._metrics:
            self._metrics[run.index] = read_run_metrics(run.path)
        return self._metrics[run.index]

    def protocol_keys(self, run: RunFolder) -> list[str]:
        """The run's protocol keys with per-image metrics whose views form sequences, in
        summary order (then any others in metrics.parquet's order). Worst-case sets
        (`worst@KIND`: views by growing transformation, cut at the first failure) have their
        own section and are left out."""
        measured = [k for k in self.metrics(run).keys() if not k.startswith("worst@")]
        keys = [k for k in run.protocol_keys if k in measured]
        return keys + [k for k in measured if k not in keys]

    def curve_images(self, run: RunFolder) -> list[int]:
        if run.index not in self._curve_images:  # asked by every section and protocol
            self._curve_images[run.index] = self.metrics(run).most_unstable(
                self.limits.curve_images
            )
        return list(self._curve_images[run.index])

    def wall_images(self, run: RunFolder, key: str) -> np.ndarray:
        return spread_pick(self.metrics(run).wall_order(key), self.limits.wall_images)

    def protocol_views(self, run: RunFolder) -> dict[str, ProtocolViews]:
        """Every protocol key's views: geometry and per-view means over all images."""
        return self._read_views(run)[0]

    def details(self, run: RunFolder) -> dict[tuple[str, int], Sequence]:
        """The recorded sequences of every image a figure of this run shows."""
        return self._read_views(run)[1]

    def _read_views(self, run: RunFolder):
        if run.index not in self._views:
            chosen = set(self.curve_images(run))
            wanted = {
                key: chosen | {int(i) for i in self.wall_images(run, key)}
                for key in self.protocol_keys(run)
            }
            try:
                self._views[run.index] = read_views(run.path, wanted)
            except (OSError, KeyError, ValueError) as exc:
                raise JaggyError(f"cannot read '{run.predictions}': {exc}") from exc
        return self._views[run.index]

    def thumbnails(self, run: RunFolder, index: int, image_id: str, key: str, views: list[int]):
        """Thumbnails of views (uint8 arrays) or the reason there are none; made once."""
        memo = (run.index, image_id, key, tuple(views))
        if memo not in self._thumbs:
            self.make_thumbnails(run, [(index, image_id, key, views)])
        return self._thumbs[memo]

    def make_thumbnails(
        self, run: RunFolder, wanted: list[tuple[int, str, str, list[int]]]
    ) -> None:
        """The thumbnails of (image index, image id, protocol key, views) requests not made
        yet: those the audit wrote (thumbnails/) are read; the others are re-made from the
        image files, spread over worker processes, one call per image and source, so that
        each source is decoded once (re-creating the views of a few dozen requests takes
        seconds)."""
        todo = []
        for index, image_id, key, views in wanted:
            memo = (run.index, image_id, key, tuple(views))
            if memo in self._thumbs:
                continue
            stored = self._stored_thumbnails(run, index, image_id)
            if all((key, k) in stored for k in views):
                self._thumbs[memo] = [stored[(key, k)] for k in views]
            else:
                todo.append((image_id, key, views))
        if not todo:
            return
        maker = self.view_maker(run)
        groups: dict[tuple, list[tuple[str, str, list[int]]]] = {}
        for j, (image_id, key, views) in enumerate(todo):
            source = maker.source_key(image_id, key)
            groups.setdefault((image_id, source if source is not None else j), []).append(
                (image_id, key, views)
            )
        made = run_calls([functools.partial(_thumbnails, maker, g) for g in groups.values()])
        for group, thumbs in zip(groups.values(), made, strict=True):
            for (image_id, key, views), one in zip(group, thumbs, strict=True):
                self._thumbs[(run.index, image_id, key, tuple(views))] = one

    def _stored_thumbnails(self, run: RunFolder, index: int, image_id: str) -> dict:
        if run.index not in self._run_ids:
            try:  # a run without its run.json shows only views re-made from the files
                record = read_json(run.path / RUN_FILE)
            except DataError:
                record = None
            self._run_ids[run.index] = record.get("run_id") if isinstance(record, dict) else None
        memo = (run.index, index)
        if memo not in self._stored:
            self._stored[memo] = read_thumbnails(
                run.path, index, image_id, self._run_ids[run.index], self.view_maker(run).side
            )
        return self._stored[memo]

    def view_maker(self, run: RunFolder) -> ViewMaker:
        if run.index not in self._makers:
            self._makers[run.index] = ViewMaker(run)
        return self._makers[run.index]


def _thumbnails(maker: ViewMaker, requests: list[tuple[str, str, list[int]]]) -> list:
    return [maker.thumbnails(i, k, views) if views else [] for i, k, views in requests]


def render_report(run_dirs: list[str | Path], limits: ReportLimits | None = None) -> str:
    """The report of `run_dirs` as an HTML string (see `write_report`)."""
    if not run_dirs:
        raise ArgumentError("give at least one run folder (the --out of jaggy audit or demo)")
    runs = [RunFolder(path, i) for i, path in enumerate(run_dirs)]
    distinct_labels(runs)
    report = Report(runs, limits or ReportLimits())
    with deferred_figures() as figures:  # sections first, then every figure in one pass
        page = _render_page(runs, report)
    return figures.resolve(page)


def _render_page(runs: list[RunFolder], report: Report) -> str:
    sections = list_sections()
    shown = {
        section.name: [run for run in runs if section.present(run.path)] for section in sections
    }
    for run in runs:
        unfinished = run.unfinished()
        if unfinished:
            raise DataError(unfinished)
        if not any(run in present for present in shown.values()):
            raise DataError(
                f"'{run.path}' holds no results that jaggy report knows (looked for "
                f"{', '.join(KNOWN_FILES)}); give the --out folder of jaggy audit, demo, "
                "layers or compare"
            )
    shown_sections = []
    for section in sections:
        present = shown[section.name]
        if not present:
            continue
        body = section.render(present, report)
        if body:  # markup from a template; a plain string is shown as text
            shown_sections.append({"name": section.name, "title": section.title, "body": body})
    page = render_template(
        "page.html.j2",
        title="jaggy report: " + ", ".join(run.label for run in runs),
        subtitle=[f"{run.label} — {run.path}" for run in runs],
        sections=shown_sections,
        version=__version__,
    )
    return str(page) + "\n"


def write_report(
    run_dirs: list[str | Path], out: str | Path, limits: ReportLimits | None = None
) -> Path:
    """Write one self-contained HTML report of one or more result folders.

    Every figure is embedded (SVG, PNG/JPEG data URIs); the page loads no scripts, fonts or
    styles from elsewhere. Sections appear only for data present in the folders (audit runs,
    `jaggy layers`, `jaggy compare`, ...). Every string from the data is HTML-escaped.

    Args:
        run_dirs: result folders (an audit's --out, a demo folder, a layers or compare folder).
        out: the HTML file to write (parent folders are created; written atomically).
        limits: caps on images drawn (default: 64 wall rows, 6 curve images per run).

    Returns:
        The path of the written file.

    Raises:
        ArgumentError: no folders given. DataError: a folder is missing or holds no results.
    """
    html_text = render_report(run_dirs, limits)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JaggyError(
            f"cannot create the folder of '{out}': {exc.strerror or exc}; {REPORT_HINT}"
        ) from exc

    atomic_write_text(out, html_text, hint=REPORT_HINT)
    return out


REPORT_HINT = "choose a writable path for --out (the result folders are unchanged)"
