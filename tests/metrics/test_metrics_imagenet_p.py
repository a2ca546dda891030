"""flip_probability, top5_distance (difficulty d) and pm-k against plain transcriptions.

The ImageNet-P references below are a transcription, written out here in plain loops, of how
ImageNet-P's `test.py` (hendrycks/robustness, Hendrycks & Dietterich, ICLR 2019) walks a
non-noise perturbation sequence and scores it:

- every frame gets the 1-based rank of every class (rank 1: the largest logit);
- with difficulty d, for each offset i in 0..d-1 the walk starts at frame i and steps through
  frames i + d, i + 2d, ...; each frame is compared with the previous frame of that walk, which
  then becomes the previous frame (for noise sequences it would stay frame i; jaggy has none);
- flip: 1 when the two frames' argmax differ;
- top-5 distance: sigma = the later frame's ranks of the classes in the order of the earlier
  frame's ranking; with c = cumulative sum of [0, 1, 1, 1, 1, 1, 0, 0, ...] (so
  c[r - 1] = min(r - 1, 5)), the distance is sum over i = 1..5 of |c[i - 1] - c[sigma(i) - 1]|;
- a video's value is the mean over every comparison of its walks; the benchmark's number is
  the mean over videos.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaggy.metrics import per_image_metrics
from jaggy.metrics._functional import flip_probability, p_top1_change, pmk_accuracy, top5_distance
from jaggy.metrics._summary import summarize_sequences
from jaggy.results import PredictionSequences

N_CLASSES = 30


def random_videos(seed: int, n_videos: int = 6, labelled: bool = True):
    """Logits of a few videos of different lengths, with slowly drifting answers."""
    rng = np.random.default_rng(seed)
    videos = []
    for _ in range(n_videos):
        n_frames = int(rng.integers(1, 25))
        base = rng.normal(size=N_CLASSES) * 2
        drift = np.cumsum(rng.normal(size=(n_frames, N_CLASSES)) * 0.6, axis=0)
        logits = base + drift
        label = int(rng.integers(0, 4)) if labelled else -1
        logits[:, :4] += 2.0  # a few classes compete for top-1
        videos.append((logits, label))
    return videos


def sequences_of(videos) -> PredictionSequences:
    """Prediction rows as the engine stores them: top-5 ids only (and softmax top-5 probs)."""
    rows = {k: [] for k in ("image_index", "view", "label", "ref_class", "top5_ids")}
    rows.update(top5_probs=[], p_ref=[], p_prev_top1=[])
    for index, (logits, label) in enumerate(videos):
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        ref = label if label >= 0 else int(probs[0].argmax())
        for v in range(len(logits)):
            order = np.argsort(-probs[v], kind="stable")
            rows["image_index"].append(index)
            rows["view"].append(v)
            rows["label"].append(label)
            rows["ref_class"].append(ref)
            rows["top5_ids"].append(order[:5].tolist())
            rows["top5_probs"].append(probs[v][order[:5]].tolist())
            rows["p_ref"].append(float(probs[v][ref]))
            rows["p_prev_top1"].append(
                None if v == 0 else float(probs[v][int(probs[v - 1].argmax())])
            )
    return PredictionSequences.from_columns(rows)


# --- the transcription of ImageNet-P's test.py walk ------------------------------------------


def ordinal_ranks(logits_of_frame: np.ndarray) -> np.ndarray:
    """rank[c] = 1-based position of class c when sorted by decreasing logit (ties: lower
    index first, as scipy's rankdata(-x, method='ordinal'))."""
    order = sorted(range(len(logits_of_frame)), key=lambda c: (-logits_of_frame[c], c))
    rank = np.zeros(len(logits_of_frame), dtype=np.int64)
    for position, c in enumerate(order, start=1):
        rank[c] = position
    return rank


CUM_SUM_TOP5 = np.cumsum(np.asarray([0] + [1] * 5 + [0] * (N_CLASSES - 1 - 5)))


def top5_dist(sigma: np.ndarray) -> int:
    return int(np.sum(np.abs(CUM_SUM_TOP5[:5] - CUM_SUM_TOP5[sigma - 1][:5])))


def imagenet_p_video_values(logits: np.ndarray, difficulty: int) -> tuple[float, float]:
    """(flip probability, top-5 distance) of one video by ImageNet-P's walk."""
    predictions = [int(np.argmax(f)) for f in logits]
    ranks = [ordinal_ranks(f) for f in logits]
    flips, distances = [], []
    for i in range(difficulty):
        previous_prediction = predictions[i] if i < len(predictions) else None
        previous_rank = ranks[i] if i < len(ranks) else None
        for j in list(range(i, len(logits), difficulty))[1:]:
            flips.append(int(previous_prediction != predictions[j]))
            inverse = np.argsort(previous_rank)  # position -> class of the earlier frame
            distances.append(top5_dist(ranks[j][inverse]))
            previous_prediction, previous_rank = predictions[j], ranks[j]
    if not flips:
        return math.nan, math.nan
    return float(np.mean(flips)), float(np.mean(distances))


def brute_force_pmk(logits: np.ndarray, label: int, k: int) -> float:
    if label < 0:
        return math.nan
    correct = [int(np.argmax(f)) == label for f in logits]
    good = 0
    for j in range(len(correct)):
        neighbours = [correct[i] for i in range(len(correct)) if abs(i - j) <= k]
        good += all(neighbours)
    return good / len(correct)


def assert_values(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if math.isnan(w):
            assert math.isnan(g)
        else:
            assert g == pytest.approx(w, abs=1e-12)


@pytest.mark.parametrize("difficulty", [1, 2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_flip_probability_and_top5_distance_follow_imagenet_p_walk(seed, difficulty):
    videos = random_videos(seed)
    seq = sequences_of(videos)
    want = [imagenet_p_video_values(logits, difficulty) for logits, _ in videos]
    assert_values(flip_probability(seq, difficulty=difficulty), [w[0] for w in want])
    assert_values(top5_distance(seq, difficulty=difficulty), [w[1] for w in want])
    # the summary is the mean over videos, as ImageNet-P's result += mean / len(videos)
    summary = summarize_sequences({"translate": seq}, difficulty=difficulty)["translate"]
    defined = [w for w in want if not math.isnan(w[0])]
    assert summary["flip_probability"]["value"] == pytest.approx(np.mean([w[0] for w in defined]))
    assert summary["top5_distance"]["value"] == pytest.approx(np.mean([w[1] for w in defined]))


def test_difficulty_one_flip_probability_is_p_top1_change():
    seq = sequences_of(random_videos(3))
    assert_values(flip_probability(seq), p_top1_change(seq).tolist())


def test_top5_distance_worked_example():
    """A class leaving the top-5 counts as rank 6 (0-based 5)."""
    frames = np.array([[9, 8, 7, 6, 5, 4] + [0] * 24, [9, 8, 7, 6, 0, 5] + [0] * 24], float)
    seq = sequences_of([(frames, -1)])
    # class 4 (previous position 4) falls to rank > 5: |4 - 5| = 1
    assert top5_distance(seq).tolist() == [1.0]


@pytest.mark.parametrize("k", [0, 1, 2, 5, 10])
@pytest.mark.parametrize("seed", range(4))
def test_pmk_accuracy_matches_brute_force(seed, k):
    videos = random_videos(seed + 10)
    seq = sequences_of(videos)
    assert_values(pmk_accuracy(seq, pmk=k), [brute_force_pmk(lg, lb, k) for lg, lb in videos])


def test_pmk_needs_labels_and_zero_is_benign_accuracy():
    seq = sequences_of(random_videos(2, labelled=False))
    assert np.isnan(pmk_accuracy(seq)).all()
    labelled = sequences_of(random_videos(2))
    metrics = per_image_metrics(labelled, pmk=0)
    assert_values(metrics["pmk_accuracy"], metrics["accuracy"].tolist())


def test_context_reaches_the_metrics():
    seq = sequences_of(random_videos(4))
    metrics = per_image_metrics(seq, difficulty=3, pmk=2)
    assert_values(metrics["flip_probability"], flip_probability(seq, difficulty=3).tolist())
    assert_values(metrics["pmk_accuracy"], pmk_accuracy(seq, pmk=2).tolist())
