"""One PNG of P(c*) versus shift per image of an audit (what `jaggy demo` leaves in figures/).

The predictions are streamed through `jaggy.results.iter_sequences`; an image is ready as soon
as the reader has moved past it, and ready images are drawn a batch at a time, spread over a
few worker processes (`figures._parallel`), so memory holds the sequences of a few dozen images,
whatever the size of the run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

from ..figures import ShiftCurve
from ..figures._parallel import run_calls
from ..figures._shift_curves import class_label, shift_curves_png
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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pending: dict[int, tuple[str, list[ShiftCurve]]] = {}
    written: dict[int, Path] = {}
    accepted: set[int] = set()  # image indices drawn (the first max_images of the file)
    ready: list[int] = []  # complete images, not drawn yet

    def draw(index: int) -> None:
        ready.append(index)
        if len(ready) >= BATCH:
            draw_ready()

    def draw_ready() -> None:
        drawn = run_calls(
            [functools.partial(shift_curves_png, pending[i][1], pending[i][0]) for i in ready]
        )
        for index, png in zip(ready, drawn, strict=True):
            image_id, _ = pending.pop(index)
            safe = re.sub(r"[^A-Za-z0-9._-]+", "_", image_id).strip("_") or f"image{index}"
            path = out_dir / f"{index:05d}-{safe[:80]}.png"
            atomic_write_bytes(path, png, hint=OUT_HINT)
            written[index] = path
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
    return [written[i] for i in sorted(written)]
