"""One PNG of P(c*) versus shift per image of an audit (what `jaggy demo` leaves in figures/).

The predictions are streamed through `jaggy.results.iter_sequences`; an image is ready as soon
as the reader has moved past it, and ready images are drawn a batch at a time, spread over a
few worker processes (`figures._parallel`) while the file is read on, so memory holds the
sequences of a few dozen images, whatever the size of the run. `start_shift_curve_pngs` returns
while the last batch is drawn, so that the caller can do other work meanwhile.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

from ..figures import ShiftCurve
from ..figures._parallel import PendingCalls, start_calls
from ..figures._shift_curves import class_label, load_matplotlib, shift_curves_png
from ..results import iter_sequences
from ..results._atomic import OUT_HINT, atomic_write_bytes
from ..results._files import PREDICTIONS_FILE

BATCH = 16  # images drawn together


def write_shift_curve_pngs(
    run_dir: str | Path,
    out_dir: str | Path,
    class_names: Sequence[str] | None = None,
    max_images: int | None = None,
) -> list[Path]:
    """Write a PNG of P(c*) versus shift for each image of an audit folder.

    Files are named `{image_index:05d}-{image_id made file-safe}.png`; each curve's label
    names its protocol key and its c* ('(label)' when c* is the true label).

    Args:
        run_dir: the audit's --out folder (its predictions.parquet is read).
        out_dir: folder for the PNGs (created).
        class_names: names of the model's classes, for the legend.
        max_images: draw only the first this many images (by image index).

    Returns:
        The written paths, in image index order.
    """
    return start_shift_curve_pngs(run_dir, out_dir, class_names, max_images).wait()


class PendingPngs:
    """PNGs still being drawn in worker processes; `wait()` writes them and returns every
    path (see `write_shift_curve_pngs`)."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.written: dict[int, Path] = {}
        self._drawing: tuple[list[tuple[int, str]], PendingCalls] | None = None

    def draw(self, batch: list[tuple[int, str, list[ShiftCurve]]]) -> None:
        """Start drawing `batch` (index, image id, curves), once the previous batch is in."""
        self._write_drawn()
        calls = [functools.partial(shift_curves_png, curves, title) for _, title, curves in batch]
        self._drawing = ([(i, title) for i, title, _ in batch], start_calls(calls))

    def _write_drawn(self) -> None:
        if self._drawing is None:
            return
        names, pending = self._drawing
        self._drawing = None
        for (index, image_id), png in zip(names, pending.results(), strict=True):
            safe = re.sub(r"[^A-Za-z0-9._-]+", "_", image_id).strip("_") or f"image{index}"
            path = self.out_dir / f"{index:05d}-{safe[:80]}.png"
            atomic_write_bytes(path, png, hint=OUT_HINT)
            self.written[index] = path

    def wait(self) -> list[Path]:
        self._write_drawn()
        return [self.written[i] for i in sorted(self.written)]


def start_shift_curve_pngs(
    run_dir: str | Path,
    out_dir: str | Path,
    class_names: Sequence[str] | None = None,
    max_images: int | None = None,
) -> PendingPngs:
    """`write_shift_curve_pngs`, returning while the last images are still drawn in worker
    processes, so that the caller can do other work meanwhile (the demo writes its report)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    load_matplotlib()  # once here, not in every worker forked to draw
    pngs = PendingPngs(out_dir)
    pending: dict[int, tuple[str, list[ShiftCurve]]] = {}
    accepted: set[int] = set()  # image indices drawn (the first max_images of the file)
    ready: list[int] = []  # complete images, not drawn yet

    def draw(index: int) -> None:
        ready.append(index)
        if len(ready) >= BATCH:
            draw_ready()

    def draw_ready() -> None:
        if ready:
            pngs.draw([(i, *pending.pop(i)) for i in ready])
        ready.clear()

    for seq in iter_sequences(Path(run_dir) / PREDICTIONS_FILE, optional=["image_id"]):
        first = int(seq.image_index[0]) if len(seq.image_index) else 0
        # Sequences of a key come in file order and keys in order of first appearance, so no
        # later sequence holds an image below this one's first: those images are complete.
        for index in sorted(i for i in pending if i < first and i not in ready):
            draw(index)
        for start, end in zip(seq.starts, seq.ends, strict=True):
            index = int(seq.image_index[start])
            if index not in accepted:
                if max_images is not None and len(accepted) >= max_images:
                    continue
                accepted.add(index)
            ref = int(seq.ref_class[start])
            known = int(seq.label[start]) >= 0
            name = f"{seq.protocol} · c* = {class_label(ref, class_names, short=True)}"
            curve = ShiftCurve(
                name + (" (label)" if known else ""),
                seq.view[start:end].tolist(),
                seq.p_ref[start:end].tolist(),
            )
            pending.setdefault(index, (str(seq.image_id[start]), []))[1].append(curve)
    for index in sorted(i for i in pending if i not in ready):
        draw(index)
    draw_ready()
    return pngs
