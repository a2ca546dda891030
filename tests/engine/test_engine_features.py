"""`measure='features[:LAYER]'`: representations through the engine, files and resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

import jaggy
from jaggy.engine._measure import FeatureTap, Measure
from jaggy.errors import ArgumentError, JaggyError
from jaggy.models import load_model
from jaggy.report._run import RunFolder
from jaggy.report._views import ViewMaker
from jaggy.results import read_sequences
from jaggy.results._features import read_features

PROTOCOLS = ["crop", "neighbours", "zhang"]


def audit(folder, out, **options):
    settings = {
        "protocols": PROTOCOLS,
        "steps": 4,
        "batch_size": 5,  # batches cut sequences and pairs: the carried features are used
        "workers": 0,
        "threads": 1,
        "progress": False,
        **options,
    }
    model = settings.pop("model", "py:tinynets:tiny_jumpy")
    return jaggy.audit(model, str(folder), out=out, **settings)


def plain_pair_changes(vectors: np.ndarray, view: np.ndarray, pairing: str):
    """cosine distance and relative L2 of each row against its paired row, by a loop."""
    cos = np.full(len(view), np.nan)
    rel = np.full(len(view), np.nan)
    for i, v in enumerate(view):
        if (pairing == "disjoint" and v % 2 == 1) or (pairing != "disjoint" and v > 0):
            a, b = vectors[i - 1].astype(np.float64), vectors[i].astype(np.float64)
            cos[i] = 1 - a @ b / np.sqrt((a @ a) * (b @ b))
            rel[i] = np.sqrt(((b - a) ** 2).sum() / (a @ a))
    return cos, rel


def test_saved_features_give_the_stored_pair_statistics(image_folder, tmp_path):
    run = audit(image_folder, tmp_path / "out", measure="logits,features", save_features=True)
    table = pq.read_table(run.predictions).to_pandas()
    vectors = read_features(run.out)
    assert vectors.shape == (len(table), 16) and vectors.dtype == np.float32
    pairing = {"crop": "consecutive", "neighbours": "disjoint", "zhang": "disjoint"}
    for key, rows in table.groupby("protocol", sort=False):
        for _, image in rows.groupby("image_index"):
            idx = image.index.to_numpy()
            cos, rel = plain_pair_changes(vectors[idx], image.view.to_numpy(), pairing[key])
            np.testing.assert_allclose(image.feat_cos, cos, rtol=1e-3, atol=1e-6)
            np.testing.assert_allclose(image.feat_rel_l2, rel, rtol=1e-4, atol=1e-6)
    assert "features" not in table.columns  # the vectors live in features.npy only
    summary = json.loads((run.out / "summary.json").read_text())
    assert summary["representation"]["threshold"] == jaggy.metrics.DEFAULT_FEATURE_THRESHOLD
    assert summary["representation"]["layer"] == "penultimate"
    manifest = json.loads((run.out / "manifest.json").read_text())
    assert manifest["representation"]["distance"] == "cosine"
    for key in ("crop", "neighbours"):
        assert summary["protocols"][key]["feature_cos_distance"]["value"] > 0


def test_batch_size_does_not_change_the_representation_columns(image_folder, tmp_path):
    small = audit(image_folder, tmp_path / "a", measure="features", batch_size=3)
    large = audit(image_folder, tmp_path / "b", measure="features", batch_size=64)
    a, b = (pq.read_table(r.predictions).to_pandas() for r in (small, large))
    np.testing.assert_allclose(a.feat_cos, b.feat_cos, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(a.feat_rel_l2, b.feat_rel_l2, rtol=1e-4, atol=1e-7)


def test_logits_only_runs_have_no_representation(image_folder, tmp_path):
    run = audit(image_folder, tmp_path / "out")
    table = pq.read_table(run.predictions)
    assert np.isnan(table.column("feat_cos").to_numpy()).all()
    assert run.summary.protocols["crop"].value("feature_cos_distance") is None
    assert "representation" not in json.loads((run.out / "summary.json").read_text())


def test_headless_model_audits_its_features(image_folder, tmp_path):
    run = audit(
        image_folder,
        tmp_path / "out",
        model="py:tinynets:tiny_headless",
        measure="features",
        save_features=True,
    )
    summary = run.summary.protocols["neighbours"]
    assert summary.value("p_top1_change") is None  # no class metrics without logits
    assert summary.value("feature_cos_distance") > 0
    assert summary.value("fooling_rate") is not None
    table = pq.read_table(run.predictions).to_pandas()
    assert (table.top1 == -1).all() and table.p_ref.isna().all()
    # the features are the model's output, unchanged
    model = load_model("py:tinynets:tiny_headless")
    assert read_features(run.out).shape[1] == 16
    assert run.summary.representation["headless"] is True
    assert model.num_classes == 0


def test_headless_model_refuses_class_metrics_before_any_work(image_folder, tmp_path):
    out = tmp_path / "out"
    for measure in ("logits", "logits,features"):
        with pytest.raises(JaggyError, match="no classifier head.*--measure features"):
            audit(image_folder, out, model="py:tinynets:tiny_headless", measure=measure)
    assert not out.exists()


def test_named_layer_equals_a_hand_made_forward_hook():
    model = load_model("py:tinynets:tiny_jumpy")
    views = torch.randn(6, 3, 32, 32)
    taken = {}

    def hook(module, inputs, output):  # returns None: the output stays as it was
        taken["out"] = output.mean(dim=(2, 3))

    handle = model.module.features[2].register_forward_hook(hook)
    with torch.inference_mode():
        model.module(views)
    handle.remove()
    for logits in (False, True):
        tap = FeatureTap(model.module, Measure(logits, True, "features.2"), headless=False)
        with torch.inference_mode():
            out, features = tap(views)
        tap.close()
        assert (out is not None) == logits
        torch.testing.assert_close(features, taken["out"])
    assert not model.module.features[2]._forward_hooks  # the tap leaves no hook behind


def test_penultimate_features_are_the_classifier_input():
    model = load_model("py:tinynets:tiny_jumpy")
    views = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        pooled = model.module.features(views).mean(dim=(2, 3))
        logits, features = FeatureTap(model.module, Measure(True, True), headless=False)(views)
        head = model.module.head(pooled)
    torch.testing.assert_close(features, pooled)
    torch.testing.assert_close(logits, head)


def test_penultimate_features_of_a_timm_model_are_its_pre_logits():
    timm = pytest.importorskip("timm")
    module = timm.create_model("resnet10t", pretrained=False).eval()
    views = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = module.forward_head(module.forward_features(views), pre_logits=True)
        _, features = FeatureTap(module, Measure(True, True), headless=False)(views)
    torch.testing.assert_close(features, expected)


def test_named_layer_run_stores_the_layers_pooled_output(image_folder, tmp_path):
    run = audit(
        image_folder,
        tmp_path / "out",
        measure="features:features.0",
        protocols=["neighbours"],
        save_features=True,
    )
    vectors = read_features(run.out)
    assert vectors.shape[1] == 8  # the first conv's 8 channels
    assert run.summary.representation["layer"] == "features.0"
    # by hand: the run's views re-created, a forward hook on the layer, its spatial mean
    model = load_model("py:tinynets:tiny_jumpy")
    taken = []

    def hook(module, inputs, output):  # returns None: the output stays as it was
        taken.append(output.mean(dim=(2, 3)))

    handle = model.module.features[0].register_forward_hook(hook)
    table = pq.read_table(run.predictions).to_pandas()
    maker = ViewMaker(RunFolder(run.out))
    for image_id, rows in table.groupby("image_id", sort=False):
        views = maker.views(image_id, "neighbours", rows.view.tolist())
        with torch.inference_mode():
            model.module(views)
        hand = taken.pop()
        np.testing.assert_allclose(vectors[rows.index], hand.numpy(), rtol=1e-5, atol=1e-6)
    handle.remove()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"measure": "features:nope"}, "no layer 'nope'"),
        ({"measure": "pixels"}, "--measure: use logits, features"),
        ({"save_features": True}, "--save-features writes the feature vectors"),
        ({"measure": "features", "feature_threshold": 3.0}, "--feature-threshold"),
        ({"measure": "features", "worst_case": ["circular"]}, "--worst-case judges"),
    ],
)
def test_bad_measure_arguments_fail_before_any_work(image_folder, tmp_path, options, message):
    out = tmp_path / "out"
    with pytest.raises(ArgumentError, match=message):
        audit(image_folder, out, **options)
    assert not out.exists()


def test_resume_with_features_gives_the_uninterrupted_rows(image_folder, tmp_path):
    options = {"measure": "logits,features", "save_features": True, "chunk_images": 2}
    reference = audit(image_folder, tmp_path / "ref", **options)
    run = audit(image_folder, tmp_path / "run", **options)
    # as a run killed after its first chunk leaves it: later chunks and outputs gone
    for path in sorted((run.out / "parts").glob("chunk-*.parquet"))[1:]:
        path.unlink()
    for name in ("predictions.parquet", "metrics.parquet", "summary.json", "features.npy"):
        (run.out / name).unlink()
    resumed = audit(image_folder, tmp_path / "run", resume=True, **options)
    got, want = (pq.read_table(r.predictions).to_pandas() for r in (resumed, reference))
    pd.testing.assert_frame_equal(got, want, check_exact=True)  # NaN where NaN, bit for bit
    np.testing.assert_array_equal(read_features(resumed.out), read_features(reference.out))
    assert resumed.summary.to_dict() == reference.summary.to_dict()


def test_read_features_says_how_to_get_them(image_folder, tmp_path):
    run = audit(image_folder, tmp_path / "out", measure="features")
    with pytest.raises(JaggyError, match="--save-features"):
        read_features(run.out)


def test_sequences_carry_the_representation_columns(image_folder, tmp_path):
    run = audit(image_folder, tmp_path / "out", measure="features", protocols=["crop"])
    seq = read_sequences(run.predictions)["crop"]
    assert not seq.has_logits and seq.has_features
    assert np.isnan(seq.feat_cos[seq.starts]).all()  # the first view has no earlier view


def test_a_timm_model_without_head_audits_its_features(image_folder, tmp_path):
    timm = pytest.importorskip("timm")
    module = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    module.jaggy_preprocessing = {"input_size": 48, "mean": (0.5,) * 3, "std": (0.25,) * 3}
    run = jaggy.audit(
        module,
        str(image_folder),
        protocols=["neighbours"],
        out=tmp_path / "out",
        measure="features",
        save_features=True,
        images=2,
        batch_size=8,
        workers=0,
        progress=False,
    )
    assert read_features(run.out).shape == (2 * 16, module.num_features)
    assert run.summary.protocols["neighbours"].value("feature_cos_distance") > 0
    with pytest.raises(JaggyError, match="no classifier head"):
        jaggy.audit(module, str(image_folder), out=tmp_path / "o2", progress=False)
