"""Which files of an output folder jaggy wrote, and whether a new run may start there.

A run folder belongs to one run. A new run starts only in a folder that is missing, empty, or
holds nothing but what an interrupted start leaves (the lock file, jaggy's half-written
temporary files, an empty parts/); anything else (a user's files, chunks without a run.json)
is refused unless the user asks to start afresh (`overwrite`). Even then jaggy deletes only
files it can tell it wrote: chunk files carrying its metadata, and the outputs of a folder
whose run.json is jaggy's. Every other file is left alone.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq

from ..errors import ArgumentError
from ..results._thumbnails import own_thumbnail_files
from ._lock import LOCK_FILE

CHUNK_META_KEY = b"jaggy.chunk"
CHUNK_NAME = re.compile(r"^chunk-\d{6}\.parquet$")
# The outputs of an audit folder (run.json is the proof that the folder is jaggy's).
RUN_OUTPUTS = (
    "predictions.parquet",
    "metrics.parquet",
    "summary.json",
    "manifest.json",
    "images.parquet",
    "features.npy",
)
OWN_NAMES = ("run.json", *RUN_OUTPUTS, "report.html")
EXAMPLES = 4


def is_temporary(name: str, owners: tuple[str, ...] | None = None, *, strict: bool = False) -> bool:
    """A temporary file of jaggy's atomic writer, '.NAME.XXXX.tmp', for one of jaggy's own
    file names `owners` (None: any chunk name, as in parts/). `strict`: exactly mkstemp's form
    (8 random characters), the only files jaggy deletes without being asked."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    owner, _, middle = name[1:-4].rpartition(".")
    if strict and not re.fullmatch(r"[A-Za-z0-9_]{8}", middle):
        return False
    if owner == "write-check":  # the probe of a writable folder
        return True
    if owners is None:
        return bool(CHUNK_NAME.match(owner))
    return owner in owners


def chunk_info(path: Path) -> dict | None:
    """The metadata jaggy stores in a chunk file, or None when it is not a jaggy chunk."""
    try:
        meta = pq.read_schema(path).metadata or {}
        info = json.loads(meta[CHUNK_META_KEY])
    except (OSError, KeyError, ValueError, TypeError, Exception):  # any unreadable file
        return None
    return info if isinstance(info, dict) else None


def _listing(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []


def folder_contents(out: Path) -> tuple[list[str], list[str]]:
    """(chunk files in parts/, every other entry that is not an interrupted start's leftover),
    as paths relative to `out`."""
    chunks, others = [], []
    for name in _listing(out):
        if name == LOCK_FILE or is_temporary(name, OWN_NAMES):
            continue
        if name == "parts" and (out / name).is_dir() and not (out / name).is_symlink():
            for part in _listing(out / name):
                if CHUNK_NAME.match(part):
                    chunks.append(f"parts/{part}")
                elif not is_temporary(part):
                    others.append(f"parts/{part}")
            continue
        others.append(name)
    return chunks, others


def _examples(names: list[str]) -> str:
    shown = ", ".join(names[:EXAMPLES])
    return shown + (f" and {len(names) - EXAMPLES} more" if len(names) > EXAMPLES else "")


def check_new_run_folder(out: Path, *, overwrite: bool) -> list[Path]:
    """Refuse a folder without a run.json that holds anything (see the module docstring).
    With `overwrite`, returns the jaggy chunk files to delete before the new run starts."""
    chunks, others = folder_contents(out)
    if not chunks and not others:
        return []
    if not overwrite:
        if chunks:
            raise ArgumentError(
                f"'{out}' holds {len(chunks)} chunk file(s) of another run in parts/ but no "
                "run.json; pass --overwrite to start afresh there (those chunks are deleted), "
                "or choose another --out"
            )
        raise ArgumentError(
            f"'{out}' is not empty and holds no jaggy run ({_examples(others)}); choose a new "
            "or empty --out, or pass --overwrite to write there anyway (jaggy replaces only "
            "its own file names and deletes nothing else)"
        )
    return [out / c for c in chunks if chunk_info(out / c) is not None]


def stale_run_files(out: Path) -> list[Path]:
    """Starting afresh (`overwrite`) in a folder whose run.json is jaggy's: that run's chunks,
    outputs and thumbnail files, so that nothing of it outlives the new run's start."""
    chunks, _ = folder_contents(out)
    files = [out / c for c in chunks if chunk_info(out / c) is not None]
    files += [out / name for name in RUN_OUTPUTS if (out / name).is_file()]
    return files + own_thumbnail_files(out)


def check_chunks_belong(out: Path, run_id: str | None) -> None:
    """On resume: every chunk file in parts/ must be a readable chunk of this run."""
    chunks, _ = folder_contents(out)
    damaged, strangers = [], []
    for name in chunks:
        info = chunk_info(out / name)
        if info is None:
            damaged.append(name)
        elif info.get("run_id") != run_id:
            strangers.append(name)
    if damaged:
        raise ArgumentError(
            f"--resume: {len(damaged)} chunk file(s) in '{out}' are damaged or not jaggy's "
            f"({_examples(damaged)}); delete them and rerun with --resume to compute their "
            "images again"
        )
    if strangers:
        raise ArgumentError(
            f"--resume: '{out}' holds {len(strangers)} chunk file(s) of another run "
            f"({_examples(strangers)}); move them away, or pass --overwrite to start afresh"
        )


def remove_files(paths: list[Path]) -> None:
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
