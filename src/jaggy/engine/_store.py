"""The output folder of a run: its identity, committed chunks, and the merged results.

Layout of OUT:
    run.json                 what the run was asked (identity) and resolved settings
    parts/chunk-000012.parquet  rows of one chunk of images (written atomically, once complete)
    predictions.parquet      all chunks, in chunk order
    summary.json, manifest.json
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .._atomic import atomic_write, atomic_write_json
from ..errors import ArgumentError, JaggyError, RunMismatchError

CHUNK_META_KEY = b"jaggy.chunk"

PREDICTION_SCHEMA = pa.schema(
    [
        ("image_index", pa.int32()),
        ("image_id", pa.string()),
        ("protocol", pa.string()),
        ("protocol_name", pa.string()),
        ("view", pa.int32()),
        ("dx", pa.float64()),
        ("dy", pa.float64()),
        ("size", pa.int32()),
        ("label", pa.int32()),
        ("ref_class", pa.int32()),
        ("top1", pa.int32()),
        ("top5_ids", pa.list_(pa.int32())),
        ("top5_probs", pa.list_(pa.float32())),
        ("p_label", pa.float32()),
        ("p_prev_top1", pa.float32()),
        ("finite", pa.bool_()),  # every logit of the view finite; else its metrics are undefined
    ]
)


class RunStore:
    """Reads and writes one run folder. Safe against interruption at any moment: a chunk file
    exists only once it is complete."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.parts = self.out / "parts"

    @property
    def run_file(self) -> Path:
        return self.out / "run.json"

    @property
    def predictions(self) -> Path:
        return self.out / "predictions.parquet"

    def chunk_path(self, chunk: int) -> Path:
        return self.parts / f"chunk-{chunk:06d}.parquet"

    def open(self, identity: dict, resume: bool) -> dict | None:
        """Create the folder for a new run, or check a resumed run's identity.

        Returns the stored run record on resume (None for a new run). Refuses to mix runs:
        an existing run without --resume, or --resume with different arguments."""
        existing = self.read_run()
        if existing is None:
            if resume and self._holds_foreign_files():
                raise ArgumentError(f"--resume: '{self.out}' holds no jaggy run (no run.json)")
            # A new run, or one interrupted before its run.json existed (nothing was
            # committed then): start afresh.
            return None
        if not resume:
            raise ArgumentError(
                f"'{self.out}' already holds a run; pass --resume to continue it, or choose "
                "another --out"
            )
        differences = _differences(existing["identity"], identity)
        if differences:
            lines = "\n".join(f"  {k}: run has {a!r}, now {b!r}" for k, a, b in differences)
            raise RunMismatchError(
                f"--resume with different arguments than the run in "
                f"'{self.out}':\n{lines}\nrerun with the original arguments"
            )
        return existing

    def _holds_foreign_files(self) -> bool:
        """Anything in OUT besides what an interrupted start leaves (an empty parts/ folder,
        half-written temporary files)."""
        if not self.out.is_dir():
            return False
        for path in self.out.iterdir():
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                continue
            if path == self.parts and path.is_dir():
                if any(not p.name.endswith(".tmp") for p in path.iterdir()):
                    return True
                continue
            return True
        return False

    def prepare(self) -> None:
        """Create OUT/parts and check that files can be written there (before any work)."""
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=self.parts)
            os.close(fd)
            os.remove(probe)
        except OSError as exc:
            raise JaggyError(
                f"cannot write into the output folder '{self.out}': {exc.strerror or exc}; "
                "choose a writable --out"
            ) from exc

    def create(self, record: dict) -> None:
        self.prepare()
        self.write_run(record)

    def read_run(self) -> dict | None:
        if not self.run_file.is_file():
            return None
        return json.loads(self.run_file.read_text())

    def write_run(self, record: dict) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.run_file, record)

    def completed_chunks(self) -> set[int]:
        if not self.parts.is_dir():
            return set()
        done = set()
        for path in self.parts.glob("chunk-*.parquet"):
            try:
                done.add(int(path.stem.split("-")[1]))
            except (IndexError, ValueError):
                continue
        return done

    def write_chunk(self, chunk: int, table: pa.Table, info: dict) -> None:
        meta = {CHUNK_META_KEY: json.dumps(info).encode()}
        table = table.replace_schema_metadata(meta)
        atomic_write(self.chunk_path(chunk), lambda tmp: pq.write_table(table, tmp))

    def chunk_info(self, chunk: int) -> dict:
        meta = pq.read_schema(self.chunk_path(chunk)).metadata or {}
        return json.loads(meta.get(CHUNK_META_KEY, b"{}"))

    def merge(self, n_chunks: int) -> list[dict]:
        """Concatenate every chunk in order into predictions.parquet; returns chunk infos.
        Memory: one chunk at a time."""
        missing = sorted(set(range(n_chunks)) - self.completed_chunks())
        if missing:
            raise JaggyError(
                f"{len(missing)} chunk(s) of the run are missing from {self.parts} (first: "
                f"{missing[0]}); rerun with --resume to compute them (under torchrun, --out "
                "must be a folder that every node shares)"
            )
        infos = []

        def write(tmp: str) -> None:
            with pq.ParquetWriter(tmp, PREDICTION_SCHEMA) as writer:
                for chunk in range(n_chunks):
                    table = pq.read_table(self.chunk_path(chunk))
                    infos.append(
                        json.loads((table.schema.metadata or {}).get(CHUNK_META_KEY, b"{}"))
                    )
                    table = table.replace_schema_metadata(None).cast(PREDICTION_SCHEMA)
                    if table.num_rows:
                        writer.write_table(table)

        atomic_write(self.predictions, write)
        return infos

    def clean_temporary(self) -> None:
        """Remove half-written files an interrupted run left (only names jaggy writes)."""
        own = ("run.json", "predictions.parquet", "summary.json", "manifest.json")
        leftovers = [p for name in own for p in self.out.glob(f".{name}.*.tmp")]
        if self.parts.is_dir():
            leftovers += list(self.parts.glob(".*.tmp"))
        for path in leftovers:
            try:
                os.remove(path)
            except OSError:
                pass


def _differences(stored: dict, current: dict) -> list[tuple[str, object, object]]:
    keys = sorted(set(stored) | set(current))
    norm = json.loads(json.dumps(current, default=str))
    return [(k, stored.get(k), norm.get(k)) for k in keys if stored.get(k) != norm.get(k)]
