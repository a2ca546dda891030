"""The output folder of a run: its identity, committed chunks, and the merged results.

Layout of OUT:
    run.json                 what the run was asked (identity) and resolved settings
    parts/chunk-000012.parquet  rows of one chunk of images (written atomically, once complete;
                             with --save-features also their feature vectors)
    predictions.parquet      all chunks, in chunk order
    features.npy             with --save-features: one feature vector per predictions row
    metrics.parquet, summary.json, manifest.json
(their formats: jaggy.results)
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ArgumentError, JaggyError, RunMismatchError
from ..results import RunRecord
from ..results._atomic import atomic_write
from ..results._features import FEATURES_COLUMN, write_features
from ..results._files import FEATURES_FILE, METRICS_FILE, PREDICTIONS_FILE, RUN_FILE
from ..results._predictions import PREDICTION_SCHEMA, versioned_metadata
from ..results._records import check_record_version, write_record
from ._fingerprint import ImageFingerprint, describe_changes
from ._lock import RunLock
from ._ownership import (
    OWN_NAMES,
    check_chunks_belong,
    check_new_run_folder,
    chunk_info,
    folder_contents,
    is_temporary,
    remove_files,
    stale_run_files,
)

CHUNK_META_KEY = b"jaggy.chunk"
FINGERPRINT_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("label", pa.int64()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("sha256", pa.string()),
    ]
)


class RunStore:
    """Reads and writes one run folder. Safe against interruption at any moment: a chunk file
    exists only once it is complete."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.parts = self.out / "parts"
        self._lock = RunLock(self.out, "audit")
        self._created_lock = False

    @property
    def fingerprint_file(self) -> Path:
        return self.out / "images.parquet"

    @property
    def run_file(self) -> Path:
        return self.out / RUN_FILE

    @property
    def predictions(self) -> Path:
        return self.out / PREDICTIONS_FILE

    @property
    def metrics(self) -> Path:
        return self.out / METRICS_FILE

    @property
    def features(self) -> Path:
        return self.out / FEATURES_FILE

    def chunk_path(self, chunk: int) -> Path:
        return self.parts / f"chunk-{chunk:06d}.parquet"

    def lock(self) -> None:
        """Hold OUT for this run (see `RunLock`); refused while another run writes there."""
        if self.out.exists() and not self.out.is_dir():
            raise ArgumentError(f"--out '{self.out}' is a file, not a folder; choose a folder")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JaggyError(
                f"cannot write into the output folder '{self.out}': {exc.strerror or exc}; choose "
                "a writable --out"
            ) from exc
        self._created_lock = not os.path.lexists(self._lock.path)
        self._lock.acquire()

    def unlock(self) -> None:
        self._lock.release()

    def open(
        self,
        identity: dict,
        resume: bool,
        *,
        overwrite: bool = False,
        fingerprints: list[ImageFingerprint] | None = None,
    ) -> RunRecord | None:
        """Check the folder for a new run, or a resumed run's identity (call `lock` first).

        Returns the stored run record on resume (None for a new run). Refuses to mix runs: an
        existing run without --resume, --resume with different arguments or images, chunks of
        another run, a folder holding files jaggy did not write (unless `overwrite`). A refused
        folder is left as it was (the lock file this call made is removed again)."""
        try:
            return self._open(identity, resume, overwrite, fingerprints)
        except JaggyError:
            if self._created_lock and self._lock.held:
                remove_files([self._lock.path])
            raise

    def _open(self, identity, resume, overwrite, fingerprints) -> RunRecord | None:
        if resume and overwrite:
            raise ArgumentError("--resume continues a run and --overwrite starts afresh; pick one")
        existing = self.read_run()
        if existing is None:
            if resume and any(folder_contents(self.out)):
                raise ArgumentError(f"--resume: '{self.out}' holds no jaggy run (no run.json)")
            remove_files(check_new_run_folder(self.out, overwrite=overwrite))
            self.clean_temporary(only_if_ours=True)
            return None
        if overwrite:
            remove_files(stale_run_files(self.out))  # that run's own chunks and outputs
            self.clean_temporary()
            return None
        if not resume:
            raise ArgumentError(
                f"'{self.out}' already holds a run; pass --resume to continue it, --overwrite "
                "to start afresh, or choose another --out"
            )
        lines = []
        for key, stored, now in _differences(existing.identity, identity):
            if key == "images_digest":
                continue
            lines.append(f"  {key}: run has {stored!r}, now {now!r}")
        if existing.identity.get("images_digest") != identity.get("images_digest"):
            lines.append(f"  images: {self._image_changes(fingerprints)}")
        if lines:
            raise RunMismatchError(
                f"--resume with different arguments or images than the run in "
                f"'{self.out}':\n" + "\n".join(lines) + "\nrerun with the original "
                "arguments and images, or start afresh with --overwrite"
            )
        check_chunks_belong(self.out, existing.run_id)
        self.clean_temporary()
        return existing

    def unfinished_message(self) -> str:
        """How far an audit without a summary got, and the command that finishes it."""
        record = self.read_run()
        done = 0
        for chunk in self.completed_chunks():
            info = chunk_info(self.chunk_path(chunk))
            done += info is not None and info.get("run_id") == record.run_id
        total, per_chunk = record.n_chunks, record.chunk_images
        progress = f"{done} of {total} chunk(s)"
        if per_chunk:
            progress += f" (up to {done * per_chunk} image(s), {per_chunk} per chunk)"
        command = record.current.command if record.sessions else None
        holder = RunLock(self.out, "audit")
        try:
            if holder.path.is_file():  # never leave a lock file in a folder that had none
                holder.acquire().release()
        except ArgumentError as busy:
            return (
                f"'{self.out}' holds an audit that is still running: {progress} done so far; {busy}"
            )
        except JaggyError:
            pass  # a read-only folder: report what is known
        argv = [str(a) for a in command] if isinstance(command, list) and command else []
        if argv and Path(argv[0]).name in ("jaggy", "__main__.py"):
            words = ["jaggy", *argv[1:]] + ([] if "--resume" in argv else ["--resume"])
            how = f"finish it with: {shlex.join(words)}"
        else:
            how = "finish it by running it again with --resume (resume=True in Python)"
        return (
            f"'{self.out}' holds an unfinished audit: {progress} are done and it has no results "
            f"yet; {how} (then run jaggy report again)"
        )

    def _image_changes(self, fingerprints: list[ImageFingerprint] | None) -> str:
        before = self.read_fingerprints()
        if before is None or fingerprints is None:
            return "the image list or the files differ (the run recorded no file list)"
        return describe_changes(before, fingerprints) or "the images differ"

    def write_fingerprints(self, fingerprints: list[ImageFingerprint]) -> None:
        table = pa.table(
            {
                name: [getattr(p, name) for p in fingerprints]
                for name in ("image_id", "label", "size", "mtime_ns", "sha256")
            },
            schema=FINGERPRINT_SCHEMA,
        )
        atomic_write(self.fingerprint_file, lambda tmp: pq.write_table(table, tmp))

    def read_fingerprints(self) -> list[ImageFingerprint] | None:
        try:
            table = pq.read_table(self.fingerprint_file)
        except (OSError, pa.ArrowException):
            return None
        columns = [table.column(n).to_pylist() for n in FINGERPRINT_SCHEMA.names]
        return [ImageFingerprint.from_row(row) for row in zip(*columns, strict=True)]

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

    def read_run(self) -> RunRecord | None:
        """The run record; None when no run started here. A damaged run.json is a one-line
        error; one written by another jaggy version is refused naming both versions."""
        if not self.run_file.is_file():
            return None
        try:
            record = json.loads(self.run_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            record, problem = None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        else:
            problem = "" if _is_run_record(record) else "not the record of a jaggy run"
        if problem:
            raise JaggyError(
                f"'{self.run_file}' is damaged ({problem}); pass --overwrite to start afresh "
                "in that folder, or choose another --out"
            )
        check_record_version(self.run_file, record, "run")
        return RunRecord.from_dict(record)

    def write_run(self, record: RunRecord) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_record(self.run_file, record)

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
        meta = versioned_metadata({CHUNK_META_KEY: json.dumps(info).encode()})
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
                    table = self._read_chunk(chunk)
                    infos.append(
                        json.loads((table.schema.metadata or {}).get(CHUNK_META_KEY, b"{}"))
                    )
                    # the saved feature vectors of a chunk go to features.npy, not here
                    table = table.select(PREDICTION_SCHEMA.names)
                    table = table.replace_schema_metadata(None).cast(PREDICTION_SCHEMA)
                    if table.num_rows:
                        writer.write_table(table)

        atomic_write(self.predictions, write)
        return infos

    def merge_features(self, n_chunks: int) -> Path | None:
        """Concatenate the feature vectors saved in the chunks, in chunk order, into
        features.npy (row i belongs to row i of predictions.parquet); None when the run
        saves none. Memory: one chunk at a time."""
        paths = [self.chunk_path(chunk) for chunk in range(n_chunks)]
        if not paths or FEATURES_COLUMN not in pq.read_schema(paths[0]).names:
            return None
        write_features(self.features, paths)
        return self.features

    def _read_chunk(self, chunk: int) -> pa.Table:
        path = self.chunk_path(chunk)
        try:
            return pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise JaggyError(
                f"chunk file '{path}' is damaged ({str(exc).splitlines()[0]}); delete it and "
                "rerun with --resume to compute its images again"
            ) from exc

    def clean_temporary(self, only_if_ours: bool = False) -> None:
        """Remove half-written files an interrupted run left: only the temporary names of
        jaggy's own writer ('.NAME.XXXXXXXX.tmp'). `only_if_ours`: only when the folder holds
        nothing else (a new run in a folder whose owner is unknown deletes nothing)."""
        if only_if_ours and any(folder_contents(self.out)):
            return
        leftovers = [p for p in _entries(self.out) if is_temporary(p.name, OWN_NAMES, strict=True)]
        leftovers += [p for p in _entries(self.parts) if is_temporary(p.name, strict=True)]
        for path in leftovers:
            try:
                os.remove(path)
            except OSError:
                pass


def _entries(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_file() and not p.is_symlink()]
    except OSError:
        return []


def _is_run_record(record) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("identity"), dict)
        and isinstance(record.get("sessions"), list)
        and "batch_size" in record
    )


def _differences(stored: dict, current: dict) -> list[tuple[str, object, object]]:
    """The settings that differ. A setting the stored run lacks (recorded by a version from
    before the setting existed) counts as its default, so such a run resumes when the
    setting is left at its default now."""
    from ._config import AuditConfig

    defaults = json.loads(json.dumps(AuditConfig.identity_defaults(), default=str))
    keys = sorted(set(stored) | set(current))
    norm = json.loads(json.dumps(current, default=str))
    stored = {**{k: defaults[k] for k in keys if k not in stored and k in defaults}, **stored}
    return [(k, stored.get(k), norm.get(k)) for k in keys if stored.get(k) != norm.get(k)]
