"""One folder given to `jaggy report`: what it holds (audit, layers, compare, ...), read lazily."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from ..errors import DataError
from ..figures._shift_curves import class_label

# Result files of jaggy's commands (for messages; each section tests for its own files).
KNOWN_FILES = (
    "summary.json",
    "predictions.parquet",
    "manifest.json",
    "layers.json",
    "compare.json",
)


def read_json(path: Path) -> dict | list | None:
    """A JSON file's content, or None when it is missing; a clear DataError when it is corrupt."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"cannot read '{path}': {problem}; rerun the command that wrote it"
        ) from exc


def _object(path: Path) -> dict | None:
    """A JSON file that jaggy writes as an object; anything else is a clear DataError."""
    data = read_json(path)
    if data is not None and not isinstance(data, dict):
        raise DataError(
            f"'{path}' holds a JSON {type(data).__name__}, not the object jaggy writes; it is "
            "damaged or not jaggy's: rerun the command that wrote it"
        )
    return data


class RunFolder:
    """A results folder (an audit run, or the output of `jaggy layers`, `compare`, ...).

    Everything is read on first use, so a section that does not apply costs nothing.
    `index` is the folder's position on the command line (used for distinct labels).
    """

    def __init__(self, path: str | Path, index: int = 0):
        self.path = Path(path)
        self.index = index
        if not self.path.is_dir():
            raise DataError(f"'{self.path}' is not a folder; give the --out folder of a jaggy run")
        self._label: str | None = None

    @cached_property
    def summary(self) -> dict | None:
        return _object(self.path / "summary.json")

    @cached_property
    def manifest(self) -> dict | None:
        return _object(self.path / "manifest.json")

    def unfinished(self) -> str | None:
        """Why this folder has no results yet when it holds an audit that has not finished
        (how far it got and how to finish it); None otherwise."""
        if (self.path / "summary.json").is_file() or not (self.path / "run.json").is_file():
            return None
        from ..engine._store import RunStore

        return RunStore(self.path).unfinished_message()

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.parquet"

    @property
    def has_predictions(self) -> bool:
        return self.predictions.is_file()

    @cached_property
    def model_spec(self) -> str | None:
        if self.manifest and isinstance(self.manifest.get("model"), dict):
            return self.manifest["model"].get("spec")
        if self.summary:
            return self.summary.get("model")
        for name in ("layers.json", "compare.json"):
            data = read_json(self.path / name)
            if isinstance(data, dict) and isinstance(data.get("model"), str):
                return data["model"]
        return None

    @property
    def remedies(self) -> list[str]:
        if self.manifest and isinstance(self.manifest.get("model"), dict):
            return list(self.manifest["model"].get("remedies") or [])
        return []

    @property
    def label(self) -> str:
        """A short human name: model spec (+ remedies), else the folder's name."""
        if self._label is None:
            spec = self.model_spec
            if spec:
                self._label = spec + "".join(f" +{r}" for r in self.remedies)
            else:
                self._label = self.path.name or str(self.path)
        return self._label

    @label.setter
    def label(self, value: str) -> None:
        self._label = value

    @property
    def protocol_keys(self) -> list[str]:
        """Protocol keys of the run in their order (from the summary)."""
        if self.summary and isinstance(self.summary.get("protocols"), dict):
            return list(self.summary["protocols"])
        return []

    @cached_property
    def class_names(self) -> list[str] | None:
        """Class names for an ImageNet-1k model (1000 outputs); None otherwise."""
        model = (self.manifest or {}).get("model") or {}
        if model.get("num_classes") == 1000:
            from ..models import imagenet_class_names

            return list(imagenet_class_names())
        return None

    def class_name(self, index: int, short: bool = True) -> str:
        return class_label(int(index), self.class_names, short=short)


def distinct_labels(runs: list[RunFolder]) -> None:
    """Make run labels unique: runs sharing a label get their folder name appended."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
    for run in runs:
        if counts[run.label] > 1:
            run.label = f"{run.label} [{run.path.name or run.index}]"
    seen: dict[str, int] = {}
    for run in runs:  # the same folder name twice: number them
        if run.label in seen:
            seen[run.label] += 1
            run.label = f"{run.label} #{seen[run.label]}"
        else:
            seen[run.label] = 1
