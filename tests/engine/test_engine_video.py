"""Videos and frame folders through the whole engine.

The videos are made here with PyAV from a real photo (scikit-image's chelsea) filmed along a
known camera path (tests/videos.py). FFV1 is lossless, so the decoded frames can be checked
pixel for pixel against the path; the metrics are checked against a frame-by-frame
computation (each frame prepared as a still image, the model run on it alone, the metrics
written out as loops).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

import videos
from jaggy.data import discover_videos
from jaggy.data._decode import prepare_source
from jaggy.data._video import FrameSelection, read_sequence
from jaggy.engine import AuditConfig, run_audit
from jaggy.errors import ArgumentError
from jaggy.models import load_model
from jaggy.protocols import SourceRequest

TESTS = Path(__file__).parent.parent
REPO = TESTS.parent
TABBY = 281  # n02123045: the class folder's label
MODEL = "py:videos:region_colour_net"  # its answer changes as the camera pans


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return videos.camera_frames()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, frames) -> Path:
    """DATA: a labelled lossless video, and the same frames as a frame folder elsewhere."""
    root = tmp_path_factory.mktemp("clips")
    videos.write_video(root / "video" / "n02123045" / "pan.mkv", frames)
    videos.write_frame_folder(root / "folder" / "n02123045" / "pan", frames)
    return root


def audit(data: Path, out: Path, **options):
    settings = dict(batch_size=5, workers=0, threads=1)
    settings.update(options)
    config = AuditConfig(model=MODEL, data=str(data), protocols=["video"], out=str(out), **settings)
    return run_audit(config, progress=False)


def test_decoded_frames_follow_the_camera_path(clips, frames):
    request = SourceRequest("standard", 32)
    got, note = read_sequence(clips / "video" / "n02123045" / "pan.mkv", request, FrameSelection())
    want = torch.stack(
        [prepare_source(Image.fromarray(f), request, "bicubic", 0.875) for f in frames]
    )
    assert got.shape == (videos.N_FRAMES, 3, 32, 32)
    assert torch.equal(got, want)  # every frame, in order
    assert "ffv1" in note and "12 frame(s) read" in note
    # --start 1 --frame-stride 3 --max-frames 3: frames 1, 4, 7
    picked, _ = read_sequence(
        clips / "video" / "n02123045" / "pan.mkv",
        request,
        FrameSelection(start=1, stride=3, max_frames=3),
    )
    assert torch.equal(picked, want[[1, 4, 7]])


def test_frame_folders_sort_naturally(clips, frames):
    folder = clips / "folder" / "n02123045" / "pan"
    assert sorted(p.name for p in folder.iterdir())[:3] == [
        "frame1.png",
        "frame10.png",
        "frame11.png",
    ]
    request = SourceRequest("frames", 32)
    from_folder, _ = read_sequence(folder, request, FrameSelection())
    from_video, _ = read_sequence(
        clips / "video" / "n02123045" / "pan.mkv", request, FrameSelection()
    )
    assert torch.equal(from_folder, from_video)


def test_lossy_h264_video_keeps_order_and_records_the_colour_conversion(tmp_path, frames):
    path = videos.write_video(tmp_path / "pan.mp4", frames, codec="libx264", pix_fmt="yuv420p")
    request = SourceRequest("standard", 48)
    got, note = read_sequence(path, request, FrameSelection())
    want = torch.stack(
        [prepare_source(Image.fromarray(f), request, "bicubic", 0.875) for f in frames]
    )
    assert len(got) == len(frames)
    distance = (got[:, None].float() - want[None].float()).abs().mean(dim=(2, 3, 4))
    nearest = distance.argmin(dim=1).tolist()
    # frames 4 and 5 are the same view (the camera paused); every other frame is its own
    assert [min(k, 4) if k in (4, 5) else k for k in nearest] == [
        min(k, 4) if k in (4, 5) else k for k in range(12)
    ]
    assert distance.diagonal().max() < 6  # levels: compression and YUV 4:2:0
    assert "yuv420p -> rgb24 by libswscale, BT.601 matrix, limited (tv) range" in note


def brute_force(frames, difficulty: int, pmk: int) -> dict:
    """Each frame as a still image, the model on it alone, metrics as loops; the label is
    the class the model names most often."""
    loaded = load_model(MODEL)
    prep = loaded.preprocessing
    request = SourceRequest("standard", prep.input_size)
    probs = []
    with torch.no_grad():
        for frame in frames:
            source = prepare_source(
                Image.fromarray(frame), request, prep.interpolation, prep.crop_pct
            )
            probs.append(loaded.module(prep.normalize(source)[None]).softmax(-1)[0].numpy())
    top1 = [int(p.argmax()) for p in probs]
    label = max(set(top1), key=top1.count)
    ranks = [list(np.argsort(-p, kind="stable")) for p in probs]
    n = len(frames)
    changes = [top1[k] != top1[k + 1] for k in range(n - 1)]
    flips = [top1[k] != top1[k + difficulty] for k in range(n - difficulty)]
    distances = []
    for k in range(n - difficulty):
        later = {c: r for r, c in enumerate(ranks[k + difficulty])}
        distances.append(sum(abs(i - min(later[ranks[k][i]], 5)) for i in range(5)))
    correct = [t == label for t in top1]
    pm = [all(correct[max(0, j - pmk) : j + pmk + 1]) for j in range(n)]
    return {
        "label": label,
        "top1": top1,
        "p_ref": [float(p[label]) for p in probs],
        "p_top1_change": float(np.mean(changes)),
        "flip_probability": float(np.mean(flips)),
        "top5_distance": float(np.mean(distances)),
        "accuracy": float(np.mean(correct)),
        "pmk_accuracy": float(np.mean(pm)),
    }


def test_video_rows_and_metrics_equal_a_frame_by_frame_computation(clips, frames, tmp_path):
    want = brute_force(frames, difficulty=2, pmk=1)
    labels = tmp_path / "labels.csv"
    labels.write_text(f"pan.mkv,{want['label']}\n")
    result = audit(clips / "video", tmp_path / "out", difficulty=2, pmk=1, labels=str(labels))
    rows = pq.read_table(result.predictions).to_pydict()
    assert rows["view"] == list(range(videos.N_FRAMES))  # frame count and order
    assert set(rows["image_id"]) == {"n02123045/pan.mkv"}
    assert set(rows["label"]) == {want["label"]}  # --labels overrides the folder's class
    assert rows["top1"] == want["top1"]
    p_ref = rows["p_ref"]
    assert p_ref == pytest.approx(want["p_ref"], abs=1e-5)
    entry = result.summary.to_dict()["protocols"]["video"]
    for name in ("p_top1_change", "flip_probability", "top5_distance", "accuracy", "pmk_accuracy"):
        assert entry[name]["value"] == pytest.approx(want[name], abs=1e-12), name
    # the camera path makes the answer change, and the label is right on some frames only
    assert 0 < want["p_top1_change"] < 1 and 0 < want["accuracy"] < 1
    video = result.manifest.video
    assert video["decoder"] == "PyAV" and video["version"]
    assert video["libraries"]["libavcodec"] and video["frames"] == {
        "start": 0,
        "stride": 1,
        "max_frames": None,
    }
    notes = {c["image_id"]: c["note"] for c in result.manifest.images["converted"]}
    assert "bgr0 -> rgb24" in notes["n02123045/pan.mkv"]
    # the report: ImageNet-P's table with benign and pm-k accuracy, and P(c*) along the
    # frames beside the frames (decoded again from the video)
    from jaggy.report import write_report

    html = write_report([result.out], tmp_path / "report.html").read_text()
    table = html[html.index('id="perturbations"') : html.index('id="curves"')]
    assert "benign accuracy" in table and "pm-1 accuracy" in table and "d = 2" in table
    curves = html[html.index('id="curves-video"') :]
    assert curves.count("data:image/jpeg") >= 6  # frame thumbnails beside the curve
    assert "views cannot be shown" not in html and "Views not shown" not in html


def test_the_same_frames_as_a_folder_give_the_same_rows(clips, tmp_path):
    from_video = audit(clips / "video", tmp_path / "v", max_frames=9, frame_stride=1, start=2)
    from_folder = audit(clips / "folder", tmp_path / "f", max_frames=9, frame_stride=1, start=2)
    a = pq.read_table(from_video.predictions).to_pydict()
    b = pq.read_table(from_folder.predictions).to_pydict()
    assert a.pop("image_id") == ["n02123045/pan.mkv"] * 9
    assert b.pop("image_id") == ["n02123045/pan"] * 9
    assert a == b


def test_decoding_in_worker_processes_gives_the_same_rows(clips, tmp_path):
    inline = audit(clips / "video", tmp_path / "inline", max_frames=8)
    workers = audit(clips / "video", tmp_path / "workers", max_frames=8, workers=2)
    assert pq.read_table(workers.predictions).equals(pq.read_table(inline.predictions))


def test_corrupt_truncated_and_unsupported_videos_are_recorded_and_the_run_goes_on(
    clips, frames, tmp_path
):
    data = tmp_path / "data"
    videos.write_video(data / "good.mkv", frames[:6])
    mp4 = videos.write_video(tmp_path / "whole.mp4", frames, codec="libx264", pix_fmt="yuv420p")
    (data / "cut.mp4").write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    mkv = videos.write_video(tmp_path / "whole.mkv", frames)
    (data / "cut.mkv").write_bytes(mkv.read_bytes()[: mkv.stat().st_size // 2])
    (data / "noise.webm").write_bytes(np.random.default_rng(0).bytes(4000))
    videos.write_audio_only(data / "sound.mkv")
    result = audit(data, tmp_path / "out")
    skipped = {s["image_id"]: s["reason"] for s in result.manifest.images["skipped"]}
    assert set(skipped) == {"cut.mp4", "cut.mkv", "noise.webm", "sound.mkv"}
    assert skipped["cut.mkv"].startswith("truncated video")
    assert skipped["cut.mp4"].startswith("corrupt, truncated or not a video")
    assert skipped["noise.webm"].startswith("corrupt, truncated or not a video")
    assert skipped["sound.mkv"] == "unsupported: no video stream (holds audio)"
    rows = pq.read_table(result.predictions).to_pydict()
    assert set(rows["image_id"]) == {"good.mkv"} and len(rows["view"]) == 6
    assert result.summary.n_skipped == 4


def test_a_bad_frame_makes_its_folder_unusable(tmp_path, frames):
    folder = videos.write_frame_folder(tmp_path / "clip", frames[:4])
    (folder / "frame3.png").write_bytes(b"not a png")
    with pytest.raises(Exception, match="frame 'frame3.png'"):
        read_sequence(folder, SourceRequest("frames", 32), FrameSelection())


def test_discovery_labels_and_arguments(tmp_path, frames):
    videos.write_video(tmp_path / "n01440764" / "b10.mkv", frames[:3])
    videos.write_video(tmp_path / "n01440764" / "b9.mkv", frames[:3])
    videos.write_frame_folder(tmp_path / "other" / "clip", frames[:3])
    labels = tmp_path / "labels.csv"
    labels.write_text("video,class\nclip,tabby\n")
    items = discover_videos(tmp_path, labels=labels)
    assert [(i.image_id, i.label) for i in items] == [
        ("n01440764/b9.mkv", 0),
        ("n01440764/b10.mkv", 0),
        ("other/clip", TABBY),
    ]
    with pytest.raises(ArgumentError, match="separate audits"):
        run_audit(
            AuditConfig(
                model=MODEL,
                data=str(tmp_path),
                protocols=["video", "crop"],
                out=str(tmp_path / "o"),
            )
        )
    with pytest.raises(ArgumentError, match="add --protocol video"):
        run_audit(
            AuditConfig(
                model=MODEL, samples=True, protocols=["crop"], max_frames=4, out=str(tmp_path / "x")
            )
        )
    with pytest.raises(ArgumentError, match="--samples are still photos"):
        run_audit(
            AuditConfig(model=MODEL, samples=True, protocols=["video"], out=str(tmp_path / "y"))
        )


def test_resume_after_losing_chunks_gives_the_same_rows(clips, frames, tmp_path):
    data = tmp_path / "data"
    for k in range(3):
        videos.write_video(data / f"clip{k}.mkv", frames[k : k + 7])
    first = audit(data, tmp_path / "out", chunk_images=1)
    reference = pq.read_table(first.predictions)
    (tmp_path / "out" / "parts" / "chunk-000001.parquet").unlink()
    (tmp_path / "out" / "predictions.parquet").unlink()
    config = AuditConfig(
        model=MODEL,
        data=str(data),
        protocols=["video"],
        batch_size=5,
        workers=0,
        threads=1,
        chunk_images=1,
        out=str(tmp_path / "out"),
    )
    again = run_audit(config, resume=True, progress=False)
    assert pq.read_table(again.predictions).equals(reference)
    assert again.summary == first.summary


def test_torchrun_two_ranks_equal_one_process_on_videos(clips, frames, tmp_path):
    data = tmp_path / "data"
    for k in range(4):
        videos.write_video(data / f"clip{k}.mkv", frames[k : k + 6])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO / "src")])
    env["OMP_NUM_THREADS"] = "1"
    out = tmp_path / "two"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    command += [
        "-m",
        "jaggy",
        "audit",
        MODEL,
        str(data),
        "--protocol",
        "video",
        "--batch-size",
        "4",
    ]
    command += ["--chunk-images", "1", "--threads", "1", "--out", str(out), "--no-progress"]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    single = run_audit(
        AuditConfig(
            model=MODEL,
            data=str(data),
            protocols=["video"],
            batch_size=4,
            chunk_images=1,
            threads=1,
            workers=0,
            out=str(tmp_path / "one"),
        ),
        progress=False,
    )
    assert pq.read_table(out / "predictions.parquet").equals(pq.read_table(single.predictions))
    assert json.loads((out / "summary.json").read_text()) == single.summary.to_dict()
    record = json.loads((out / "run.json").read_text())
    assert record["sessions"][0]["chunks_by_rank"] == [2, 2]
    assert not math.isnan(single.summary.protocols["video"].value("p_top1_change"))


def test_a_video_too_long_for_memory_is_refused_unless_frames_are_limited(clips, monkeypatch):
    import jaggy.data._video as video_module

    monkeypatch.setattr(video_module, "MAX_SEQUENCE_BYTES", 3 * 32 * 32 * 5)  # 5 frames
    path = clips / "video" / "n02123045" / "pan.mkv"
    with pytest.raises(video_module.VideoDecodeError, match="too long: more than 5 frames"):
        read_sequence(path, SourceRequest("frames", 32), FrameSelection())
    frames, _ = read_sequence(path, SourceRequest("frames", 32), FrameSelection(max_frames=4))
    assert len(frames) == 4


def test_frames_already_at_the_input_size_are_used_as_they_are(tmp_path, frames):
    """ImageNet-P's test.py feeds its 224 x 224 frames unresized; so does the video protocol
    for frames of the model's input size (here 32 x 32)."""
    small = [np.ascontiguousarray(f[:32, :32]) for f in frames[:4]]
    path = videos.write_video(tmp_path / "small.mkv", small)
    got, note = read_sequence(path, SourceRequest("frames", 32), FrameSelection())
    assert torch.equal(got, torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2))
    assert "used as they are" in note
    resized, _ = read_sequence(path, SourceRequest("standard", 32), FrameSelection())
    assert not torch.equal(resized, got)  # a still image of 32 px would be resized and cropped
