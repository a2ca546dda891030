"""Typed records of the JSON files of an audit folder: summary.json, manifest.json, run.json.

Each file carries `schema_version` (2 since the results package; jaggy 0.1.0 wrote none, which
reads as version 1 and is refused with a message naming both versions). `to_dict` gives the
file's JSON; `from_dict` reads it back. Manifest fields that this version does not know are
kept in `extra` and written back unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import DataError
from ._atomic import RESUME_HINT, atomic_write_json
from ._files import MANIFEST_FILE, RUN_FILE, SUMMARY_FILE
from ._predictions import SCHEMA_VERSION


def read_json_file(path: str | Path) -> dict:
    """A JSON object from a file jaggy wrote; DataError (what to do) when missing or corrupt."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"'{path}' does not exist; give the --out folder of a jaggy run") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read '{path}': {exc}; rerun the command that wrote it") from exc
    if not isinstance(data, dict):
        raise DataError(f"'{path}' is not a jaggy record (not a JSON object)")
    return data


def check_record_version(path: str | Path, data: dict, what: str) -> None:
    """Refuse a record of another schema version, naming both versions."""
    version = data.get("schema_version", 1)
    if version == SCHEMA_VERSION:
        return
    if version == 1:
        raise DataError(
            f"'{path}' was written by an earlier jaggy ({what} schema 1, no schema_version); "
            f"this jaggy reads schema {SCHEMA_VERSION}: rerun the audit into a new --out"
        )
    raise DataError(
        f"'{path}' has {what} schema {version}; this jaggy reads schema {SCHEMA_VERSION}: "
        "use the jaggy version that wrote it, or rerun the audit"
    )


# ---------------------------------------------------------------------------- summary.json


@dataclass(frozen=True)
class Estimate:
    """A metric's mean over images and its bootstrap 95% CI (None when undefined)."""

    value: float | None
    ci95: tuple[float | None, float | None] = (None, None)

    def to_dict(self) -> dict:
        return {"value": self.value, "ci95": list(self.ci95)}


@dataclass
class ProtocolSummary:
    """One protocol key: every metric's estimate, the images and pairs of views used, and
    the views whose outputs were NaN or Inf (any makes every metric of the key undefined)."""

    metrics: dict[str, Estimate]
    n_images: int
    n_pairs: int
    n_nonfinite_views: int = 0

    def value(self, metric: str) -> float | None:
        return self.metrics[metric].value

    def to_dict(self) -> dict:
        return {
            **{name: e.to_dict() for name, e in self.metrics.items()},
            "n_images": self.n_images,
            "n_nonfinite_views": self.n_nonfinite_views,
            "n_pairs": self.n_pairs,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ProtocolSummary:
        metrics = {
            name: Estimate(entry.get("value"), tuple(entry.get("ci95") or (None, None)))
            for name, entry in data.items()
            if isinstance(entry, dict)
        }
        return cls(
            metrics,
            int(data.get("n_images", 0)),
            int(data.get("n_pairs", 0)),
            int(data.get("n_nonfinite_views", 0)),
        )


@dataclass
class Summary:
    """summary.json: per protocol key (in run order), every metric with its CI."""

    model: str
    protocols: dict[str, ProtocolSummary]
    n_images: int
    n_skipped: int = 0
    schema_version: int = SCHEMA_VERSION
    # what the representation metrics compared (layer, distance, threshold τ); None when
    # the run measured only logits
    representation: dict | None = None

    def to_dict(self) -> dict:
        data = {
            "schema_version": self.schema_version,
            "model": self.model,
            "protocols": {key: p.to_dict() for key, p in self.protocols.items()},
            "n_images": self.n_images,
            "n_skipped": self.n_skipped,
        }
        if self.representation is not None:
            data["representation"] = self.representation
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Summary:
        return cls(
            model=str(data.get("model", "")),
            protocols={
                key: ProtocolSummary.from_dict(entry)
                for key, entry in (data.get("protocols") or {}).items()
            },
            n_images=int(data.get("n_images", 0)),
            n_skipped=int(data.get("n_skipped", 0)),
            schema_version=int(data.get("schema_version", 1)),
            representation=data.get("representation"),
        )


# ---------------------------------------------------------------------------- run.json


@dataclass
class Session:
    """One process (or torchrun job) that worked on a run: started, then finished or not."""

    session: int
    started: str
    world_size: int
    status: str = "running"  # running | finished | interrupted
    finished: str | None = None
    seconds: float | None = None
    chunks_by_rank: list[int] | None = None
    chunks: int | None = None  # chunks this session committed (known once the run is merged)
    command: list[str] | None = None  # the command line that started the session

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> Session:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RunRecord:
    """run.json: what the run was asked (`identity`, compared on --resume), the settings
    resolved once for every session and rank, and the sessions so far."""

    identity: dict
    batch_size: int
    memory_format: str
    threads: int
    autotune: dict | None
    n_chunks: int
    chunk_images: int
    sessions: list[Session] = field(default_factory=list)
    run_id: str | None = None  # carried by every chunk, so chunks of another run are refused
    schema_version: int = SCHEMA_VERSION
    graph: str = "eager"  # how the model ran: eager, frozen or onnx (--graph)
    graph_check: dict | None = None  # the graph's check against eager (per graph under auto)

    @property
    def current(self) -> Session:
        """The session in progress (the last one)."""
        return self.sessions[-1]

    @property
    def first_started(self) -> str | None:
        return self.sessions[0].started if self.sessions else None

    def to_dict(self) -> dict:
        return {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "identity": self.identity,
            "batch_size": self.batch_size,
            "memory_format": self.memory_format,
            "graph": self.graph,
            "graph_check": self.graph_check,
            "threads": self.threads,
            "autotune": self.autotune,
            "sessions": [s.to_dict() for s in self.sessions],
            "n_chunks": self.n_chunks,
            "chunk_images": self.chunk_images,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        return cls(
            identity=data["identity"],
            batch_size=int(data["batch_size"]),
            memory_format=str(data["memory_format"]),
            threads=int(data["threads"]),
            autotune=data.get("autotune"),
            n_chunks=int(data["n_chunks"]),
            chunk_images=int(data["chunk_images"]),
            sessions=[Session.from_dict(s) for s in data.get("sessions", [])],
            run_id=data.get("run_id"),
            schema_version=int(data.get("schema_version", 1)),
            graph=str(data.get("graph", "eager")),
            graph_check=data.get("graph_check"),
        )


# ---------------------------------------------------------------------------- manifest.json


@dataclass
class Manifest:
    """manifest.json: everything needed to trust and reproduce a run."""

    jaggy_version: str
    command: list[str]
    model: dict  # spec, weights hash, preprocessing, remedies, num_classes, ...
    protocols: list[dict]  # each protocol's parameters
    config: dict
    seed: int
    batch_size: int
    memory_format: str
    threads: int
    autotune: dict | None
    oom_backoff: list[dict]
    nonfinite_views: dict  # count, examples [{image_id, protocol, view}]
    dtype: str
    compile: bool
    device: dict
    world_size: int
    versions: dict
    images: dict  # total, used, skipped [{image_id, path, reason}], converted
    chunks: dict
    started: str | None
    finished: str | None
    sessions: list[dict]
    video: dict | None = None  # decoder, versions, frame selection (runs over videos only)
    representation: dict | None = None  # what --measure features compared, and τ
    graph: str = "eager"  # eager, frozen (TorchScript) or onnx (ONNX Runtime); see --graph
    graph_check: dict | None = None  # the graph's check against eager (per graph under auto)
    schema_version: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)

    @property
    def model_spec(self) -> str | None:
        return self.model.get("spec")

    @property
    def remedies(self) -> list[str]:
        return list(self.model.get("remedies") or [])

    @property
    def skipped(self) -> list[dict]:
        return list(self.images.get("skipped") or [])

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        for optional in ("video", "representation"):
            if data[optional] is None:
                del data[optional]
        return {"schema_version": data.pop("schema_version"), **data, **self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("schema_version", 1)
        values.setdefault("graph", "eager")  # written before --graph existed: eager
        for name in known:
            values.setdefault(name, None)
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)


# ---------------------------------------------------------------------------- reading, writing


def read_summary(run_dir: str | Path) -> Summary:
    """summary.json of an audit folder."""
    path = Path(run_dir) / SUMMARY_FILE
    data = read_json_file(path)
    check_record_version(path, data, "summary")
    return Summary.from_dict(data)


def read_manifest(run_dir: str | Path) -> Manifest:
    """manifest.json of an audit folder."""
    path = Path(run_dir) / MANIFEST_FILE
    data = read_json_file(path)
    check_record_version(path, data, "manifest")
    return Manifest.from_dict(data)


def read_run_record(run_dir: str | Path) -> RunRecord | None:
    """run.json of an audit folder; None when there is none (no run started there)."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    data = read_json_file(path)
    check_record_version(path, data, "run")
    return RunRecord.from_dict(data)


def write_record(
    path: str | Path, record: Summary | Manifest | RunRecord, *, hint: str = RESUME_HINT
) -> None:
    """Write a record's JSON atomically."""
    atomic_write_json(path, record.to_dict(), hint=hint)
