"""P(c*) versus shift, one PNG per image (the study's Figure 1 style), drawn with matplotlib.

c* (the reference class) belongs to a protocol sequence, not to the image: it is the label when
known, else the top-1 class of the sequence's first view, which can differ between protocols.
Each curve's legend therefore names its own c*.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..results import OUT_HINT, atomic_write_bytes, iter_prediction_batches  # noqa: E402
from ._palette import mpl_style  # noqa: E402

_COLUMNS = ["image_index", "image_id", "protocol", "view", "p_ref", "ref_class", "label"]
_BATCH_ROWS = 65_536


def class_label(index: int, class_names: Sequence[str] | None, short: bool = False) -> str:
    """'name (index)' when a name is known, else 'class index'. `short` keeps the first of
    comma-separated synonyms (ImageNet names such as 'tabby, tabby cat')."""
    if class_names and 0 <= index < len(class_names):
        name = class_names[index].split(",")[0] if short else class_names[index]
        return f"{name} ({index})"
    return f"class {index}"


def plot_shift_curves(
    rows: dict[str, list],
    image_id: str,
    class_names: Sequence[str] | None = None,
):
    """One image's curves: for each protocol, P(c*) against the view index (1 px per step along
    the path; for `scale`, 1 px of size growth per step).

    Args:
        rows: columns `protocol`, `view`, `p_ref` and optionally `ref_class` (c* of each row)
            and `label` (the true label, -1 when unknown).
        image_id: the image's id, used as the title.
        class_names: names of the model's classes, to name each curve's c*.

    Returns:
        The matplotlib Figure (close it after saving).
    """
    protocols = list(dict.fromkeys(rows["protocol"]))
    n = len(protocols)
    legend_rows = (n + 1) // 2
    fig, ax = plt.subplots(figsize=(7.2, 3.4 + 0.2 * legend_rows), dpi=100, layout="constrained")
    refs = rows.get("ref_class")
    labels = rows.get("label")
    for i, key in enumerate(protocols):
        picked = [j for j, k in enumerate(rows["protocol"]) if k == key]
        pairs = sorted((rows["view"][j], rows["p_ref"][j]) for j in picked)
        name = key
        if refs is not None:
            ref = int(refs[picked[0]])
            known = labels is not None and int(labels[picked[0]]) >= 0
            name = f"{key} · c* = {class_label(ref, class_names, short=True)}" + (
                " (label)" if known else ""
            )
        ax.plot(
            [v for v, _ in pairs],
            [p for _, p in pairs],
            markersize=3.5,
            linewidth=1.4,
            label=name,
            **mpl_style(i),
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("view k (1 px per step; scale: +1 px of size per step)")
    ax.set_ylabel("P(c*)")
    ax.set_title(image_id, fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(fontsize=7, ncol=2, loc="outside lower center", frameon=False)
    return fig


def write_shift_curve_pngs(
    predictions: str | Path,
    out_dir: str | Path,
    class_names: Sequence[str] | None = None,
    max_images: int | None = None,
) -> list[Path]:
    """Write a PNG of P(c*) versus shift for each image of a predictions file.

    Streams the file (only the columns drawn): an image is drawn as soon as its last row has
    been read, so memory holds the rows of a few images, whatever the size of the run. Files
    are named `{image_index:05d}-{image_id made file-safe}.png`.

    Args:
        predictions: a run's predictions.parquet.
        out_dir: folder for the PNGs (created).
        class_names: names of the model's classes, for the legend.
        max_images: draw only the first this many images (by image index).

    Returns:
        The written paths, in image index order.
    """
    # Pass 1 (one int column): where each image's last row is.
    last: dict[int, int] = {}
    position = 0
    for batch in iter_prediction_batches(predictions, ["image_index"], _BATCH_ROWS):
        for offset, index in enumerate(batch.column(0).to_pylist()):
            last[index] = position + offset
        position += batch.num_rows
    wanted = set(sorted(last)[:max_images] if max_images is not None else last)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pending: dict[int, dict[str, list]] = {}
    written: dict[int, Path] = {}
    position = 0
    for batch in iter_prediction_batches(predictions, _COLUMNS, _BATCH_ROWS):
        data = batch.to_pydict()
        for offset, index in enumerate(data["image_index"]):
            if index in wanted:
                rows = pending.setdefault(index, {k: [] for k in _COLUMNS})
                for k in _COLUMNS:
                    rows[k].append(data[k][offset])
                if last[index] == position + offset:
                    written[index] = _draw(pending.pop(index), index, out_dir, class_names)
        position += batch.num_rows
    return [written[i] for i in sorted(written)]


def _draw(rows: dict[str, list], index: int, out_dir: Path, class_names) -> Path:
    image_id = rows["image_id"][0]
    fig = plot_shift_curves(rows, image_id, class_names)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", image_id).strip("_") or f"image{index}"
    path = out_dir / f"{index:05d}-{safe[:80]}.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue(), hint=OUT_HINT)
    return path
