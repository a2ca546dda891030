"""Runs over videos and frame folders: which runs read sequences, and what their manifest
records about decoding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ArgumentError

if TYPE_CHECKING:
    from ..protocols import Protocol
    from ._config import AuditConfig
    from ._runner import AuditSetup


def check_sequence_protocols(protocols: list[Protocol], config: AuditConfig) -> bool:
    """True when the run reads videos / frame folders (the `video` protocol). Such a run
    cannot also use image protocols or the sample photos; frame options need it."""
    sequences = [p.key for p in protocols if p.reads_sequences]
    images = [p.key for p in protocols if not p.reads_sequences]
    if sequences and images:
        raise ArgumentError(
            f"--protocol {' '.join(sequences)} reads videos and frame folders, "
            f"{' '.join(images)} read still images: run them as separate audits"
        )
    if sequences and config.samples:
        raise ArgumentError(
            "--samples are still photos; the video protocol needs DATA: a video, a folder of "
            "frames or a folder of videos"
        )
    if not sequences:
        changed = [
            flag
            for flag, value, default in (
                ("--start", config.start, 0),
                ("--frame-stride", config.frame_stride, 1),
                ("--max-frames", config.max_frames, None),
            )
            if value != default
        ]
        if changed:
            raise ArgumentError(f"{', '.join(changed)} choose video frames: add --protocol video")
    return bool(sequences)


def sequence_manifest(setup: AuditSetup) -> dict:
    """The manifest's `video` entry (decoder, versions, colour conversion, frame selection)
    for a run over sequences; nothing otherwise."""
    if not setup.reads_sequences:
        return {}
    from ..data import decoder_description

    return {"video": {**decoder_description(), "frames": setup.config.frame_options()}}
