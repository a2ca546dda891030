"""Worst-case searches through the engine: early exit gives the exhaustive search's answers,
an APS + circular model is robust to every circular shift (not to crops), and an interrupted
search resumes to the rows of an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import jaggy
from conftest import write_synthetic_images
from jaggy.results import read_metrics
from tinynets import TinyCNN

KINDS = ["circular", "crop", "fourier", "grid", "random10"]
ANSWERS = ["robust_accuracy", "failing_shift", "failing_angle", "clean_accuracy"]


def jumpy(seed: int, sharpness: float = 40.0) -> torch.nn.Module:
    """A random tiny CNN whose sharp head changes its answer under small transformations."""
    net = TinyCNN(num_classes=10, width=8, seed=seed)
    with torch.no_grad():
        net.head.weight.mul_(sharpness)
    return net


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("worst") / "images"
    write_synthetic_images(folder, 5, side=44, seed=7)
    return folder


def audit(model, out: Path, exhaustive: bool, **options):
    return jaggy.audit(
        model,
        out=out,
        worst_case=options.pop("kinds", KINDS),
        exhaustive=exhaustive,
        batch_size=options.pop("batch_size", 48),
        workers=0,
        threads=1,
        progress=False,
        **options,
    )


def per_image(out: Path):
    table = read_metrics(out).to_pandas().set_index(["protocol", "image_id"]).sort_index()
    return table


def assert_same_answers(early: Path, exhaustive: Path) -> None:
    a, b = per_image(early), per_image(exhaustive)
    assert list(a.index) == list(b.index)
    for name in ANSWERS:
        assert np.allclose(a[name], b[name], equal_nan=True), name
    assert (a["n_views"] <= b["n_views"]).all()
    # early exit keeps a prefix of the exhaustive rows: the same views, the same answers
    rows_a = pq.read_table(early / "predictions.parquet").to_pandas()
    rows_b = pq.read_table(exhaustive / "predictions.parquet").to_pandas()
    key = ["image_id", "protocol", "view"]
    joined = rows_a.merge(rows_b, on=key, suffixes=("", "_all"), how="left")
    assert len(joined) == len(rows_a) and joined["top1_all"].notna().all()
    for column in ("dx", "dy", "angle", "top1"):
        assert (joined[column] == joined[f"{column}_all"]).all(), column
    assert np.allclose(joined["p_ref"], joined["p_ref_all"], atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("seed", [1, 4, 5])
def test_early_exit_answers_as_the_exhaustive_search_on_random_models(images, tmp_path, seed):
    model = jumpy(seed)
    early = audit(model, tmp_path / "early", False, data=images).out
    full = audit(model, tmp_path / "full", True, data=images).out
    assert_same_answers(early, full)
    robust = per_image(full)["robust_accuracy"]
    assert 0 < robust.mean() < 1, "the model should fail some images and not others"
    # randomK sets always run every view: worst-of-K needs the view of highest loss
    random = per_image(early).loc["worst@random10"]
    assert (random["n_views"] == 11).all()
    assert (random["worst_of_k_accuracy"] >= random["robust_accuracy"]).all()
    assert per_image(early).drop(index="worst@random10")["worst_of_k_accuracy"].isna().all()


def test_early_exit_answers_as_the_exhaustive_search_on_real_photos(tmp_path):
    model = jumpy(4, sharpness=20.0)
    options = dict(samples=True, images=3, kinds=["circular", "grid", "random10"])
    early = audit(model, tmp_path / "early", False, **dict(options)).out
    full = audit(model, tmp_path / "full", True, **dict(options)).out
    assert_same_answers(early, full)
    views = per_image(early)["n_views"].sum(), per_image(full)["n_views"].sum()
    assert views[0] < views[1], "the early exit should skip views"


def test_unlabelled_images_keep_the_clean_top1_and_labelled_ones_the_label(images, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("img000.png,3\nimg001.png,4\n")
    result = audit(jumpy(2), tmp_path / "out", False, data=images, labels=str(labels))
    table = per_image(result.out)
    labelled = table[table["label"] >= 0]
    unlabelled = table[table["label"] < 0]
    assert labelled["clean_accuracy"].notna().all() and unlabelled["clean_accuracy"].isna().all()
    assert unlabelled["robust_accuracy"].notna().all()
    rows = pq.read_table(result.out / "predictions.parquet").to_pandas()
    first = rows[rows["view"] == 0].set_index(["protocol", "image_id"])
    unlabelled_first = first[first["label"] < 0]
    assert (unlabelled_first["ref_class"] == unlabelled_first["top1"]).all()
    summary = result.summary.protocols["worst@grid"]
    assert summary.value("robust_accuracy") == pytest.approx(
        table.loc["worst@grid", "robust_accuracy"].mean()
    )


def test_aps_with_circular_padding_is_robust_to_circular_shifts_not_to_crops(images, tmp_path):
    result = jaggy.audit(
        "py:tinynets:tiny_jumpy",
        images,
        out=tmp_path / "aps",
        remedies=["aps", "circular"],
        worst_case=["circular", "crop"],
        exhaustive=True,
        batch_size=64,
        workers=0,
        threads=1,
        progress=False,
    )
    table = per_image(result.out)
    assert (table.loc["worst@circular", "robust_accuracy"] == 1).all()
    assert table.loc["worst@circular", "failing_shift"].isna().all()
    assert (table.loc["worst@crop", "robust_accuracy"] == 0).any()
    # without the remedies the same model loses some image under circular shifts
    plain = jaggy.audit(
        "py:tinynets:tiny_jumpy",
        images,
        out=tmp_path / "plain",
        worst_case=["circular"],
        batch_size=64,
        workers=0,
        threads=1,
        progress=False,
    )
    assert (per_image(plain.out).loc["worst@circular", "robust_accuracy"] == 0).any()


class Interrupted(RuntimeError):
    pass


class FailsAt(TinyCNN):
    """A jumpy TinyCNN that raises at its `fail_at`-th forward call (an interruption)."""

    def __init__(self, fail_at: int | None = None):
        super().__init__(num_classes=10, width=8, seed=2)
        with torch.no_grad():
            self.head.weight.mul_(40.0)
        self.fail_at, self.calls = fail_at, 0

    def forward(self, x):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise Interrupted("stopped mid-run")
        return super().forward(x)


def test_an_interrupted_worst_case_run_resumes_to_the_uninterrupted_rows(images, tmp_path):
    options = dict(data=images, kinds=["circular", "grid", "random10"], chunk_images=1)
    model = FailsAt()
    reference = audit(model, tmp_path / "reference", False, **dict(options)).out
    out = tmp_path / "resumed"
    with pytest.raises(Interrupted):  # half-way through the batches
        audit(FailsAt(fail_at=model.calls // 2), out, False, **dict(options))
    committed = len(list((out / "parts").glob("chunk-*.parquet")))
    assert 0 < committed < 5, "the interruption should fall inside the run"
    audit(FailsAt(), out, False, resume=True, **dict(options))
    got = pq.read_table(out / "predictions.parquet")
    want = pq.read_table(reference / "predictions.parquet")
    assert got.num_rows == want.num_rows
    for name in want.column_names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    assert per_image(out).equals(per_image(reference))


class MarkerNet(torch.nn.Module):
    """Class 0 when the brightest pixel is at the centre, class 1 elsewhere, NaN outputs
    when it is moved by (20, 20) px (a roll far down the circular set's order)."""

    def __init__(self):
        super().__init__()
        self.jaggy_preprocessing = {**dict(TinyCNN().jaggy_preprocessing), "crop_pct": 1.0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = x.shape[-1]
        where = x.sum(dim=1).flatten(1).argmax(dim=1)
        dy, dx = (where // side - side // 2) % side, (where % side - side // 2) % side
        logits = torch.zeros(len(x), 10, dtype=x.dtype, device=x.device)
        logits[:, 0] = torch.where((dx == 0) & (dy == 0), 5.0, 0.0)
        logits[:, 1] = torch.where((dx == 0) & (dy == 0), 0.0, 5.0)
        return torch.where(((dx == 20) & (dy == 20))[:, None], float("nan"), logits)


@pytest.mark.parametrize("batch_size", [4, 48, 1000])
def test_a_nan_view_after_the_first_failure_gives_the_same_answer_early_and_exhaustive(
    tmp_path, batch_size
):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[16, 16] = 255
    Image.fromarray(image).save(folder / "marker.png")
    options = dict(data=folder, kinds=["circular"], batch_size=batch_size)
    early = audit(MarkerNet(), tmp_path / "early", False, **dict(options)).out
    full = audit(MarkerNet(), tmp_path / "full", True, **dict(options)).out
    rows = pq.read_table(full / "predictions.parquet").to_pandas()
    assert (~rows["finite"]).sum() == 1, "the exhaustive search should meet the NaN view"
    assert rows["finite"].iloc[0] and len(rows) == 962
    assert_same_answers(early, full)
    table = per_image(full)
    assert table["robust_accuracy"].tolist() == [0.0]  # the NaN view fails, like a wrong one
    assert table["failing_shift"].tolist() == [pytest.approx(2**0.5)]  # the roll by (1, 1)
    assert per_image(early)["n_views"].tolist() == [min(batch_size, 962)]
    summaries = [
        json.loads((out / "summary.json").read_text())["protocols"]["worst@circular"]
        for out in (early, full)
    ]
    assert [s["robust_accuracy"]["value"] for s in summaries] == [0.0, 0.0]


def test_early_exit_on_the_automatic_configuration_answers_as_the_exhaustive_search(
    images, tmp_path
):
    """The probe of --batch-size auto runs on the search's own batches (of its sizes and
    formats): the early exit still stops after the batch of the first failing view."""
    model = jumpy(4)
    early = audit(model, tmp_path / "early", False, data=images, batch_size="auto").out
    full = audit(model, tmp_path / "full", True, data=images, batch_size=48).out
    tuned = json.loads((early / "manifest.json").read_text())["autotune"]
    assert tuned["on_run_views"] is True and tuned["views"]["count"] > 0
    assert_same_answers(early, full)
