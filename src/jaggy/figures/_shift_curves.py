"""P(reference class) versus shift, one figure per image (the study's Figure 1 style)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def plot_shift_curves(rows: dict[str, list], image_id: str, class_name: str | None = None):
    """One image's curves: for each protocol, p(c*) against the view index (px along the path,
    or px of size growth for `scale`). `rows` holds columns protocol, view, p_label."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    protocols = list(dict.fromkeys(rows["protocol"]))
    for key in protocols:
        pairs = sorted(
            (v, p)
            for k, v, p in zip(rows["protocol"], rows["view"], rows["p_label"], strict=True)
            if k == key
        )
        ax.plot([v for v, _ in pairs], [p for _, p in pairs], marker="o", markersize=3, label=key)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("view (1 px per step)")
    ax.set_ylabel("P(reference class)")
    title = image_id if not class_name else f"{image_id} — {class_name}"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    return fig


def write_shift_curve_pngs(
    predictions: str | Path, out_dir: str | Path, class_names: list[str] | None = None
) -> list[Path]:
    """A PNG of P(reference class) versus shift for each image of a predictions file."""
    table = pq.read_table(
        predictions, columns=["image_index", "image_id", "protocol", "view", "p_label", "ref_class"]
    )
    data = table.to_pydict()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_image: dict[int, list[int]] = {}
    for i, index in enumerate(data["image_index"]):
        by_image.setdefault(index, []).append(i)
    written = []
    for index, rows in by_image.items():
        image_id = data["image_id"][rows[0]]
        ref = data["ref_class"][rows[0]]
        name = class_names[ref] if class_names and 0 <= ref < len(class_names) else None
        subset = {k: [data[k][i] for i in rows] for k in ("protocol", "view", "p_label")}
        fig = plot_shift_curves(subset, image_id, name)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", image_id).strip("_") or f"image{index}"
        path = out_dir / f"{index:05d}-{safe}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
