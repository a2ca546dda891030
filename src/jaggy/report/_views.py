"""Thumbnails of the views a model saw, re-created from the source image files.

The views are rebuilt exactly as the audit made them: the run's manifest gives the model's
preprocessing and the protocol options, `jaggy.protocols.build_protocols` rebuilds the
protocols and `jaggy.data` decodes and prepares the source. Normalised views are mapped back to
0..255 (x * std + mean) and shrunk to thumbnails. When an image file has moved or the run's
protocols are unknown here, the report says so instead of showing views.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..engine._threads import torch_threads
from ..results._thumbnails import THUMB_SIDE, shrink
from ._run import RunFolder

_BATCH = 16  # views made per call when re-creating a sequence


class ViewMaker:
    """Re-creates a run's views for thumbnails. `problem` is set (and no views are made) when
    the run's manifest does not allow it."""

    def __init__(self, run: RunFolder, side: int = THUMB_SIDE):
        self.run = run
        self.side = side
        self.problem: str | None = None
        self.protocols: dict = {}
        self.preprocessing = None
        self.options = None  # the run's ProtocolOptions, once its manifest is read
        self._cache: tuple[str, dict] | None = None
        self._objects: dict | None = None  # an --annotations run's objects, by id
        manifest = run.manifest or {}
        config = manifest.get("config") or {}
        prep = (manifest.get("model") or {}).get("preprocessing")
        self.config = config
        if not prep or not (config.get("protocols") or config.get("worst_case")):
            self.problem = "the run's manifest has no preprocessing or protocol options"
            return
        try:
            from ..models import Preprocessing
            from ..protocols import build_protocols
            from ..protocols._base import options_from_config, protocol_names

            fields = {
                k: (tuple(v) if isinstance(v, list) else v)
                for k, v in prep.items()
                if k in Preprocessing.__dataclass_fields__
            }
            self.preprocessing = Preprocessing(**fields)
            self.options = options = options_from_config(config)
            built = build_protocols(protocol_names(config), self.preprocessing, options)
            self.protocols = {p.key: p for p in built}
        except Exception as exc:  # a protocol this install lacks, or changed geometry
            self.problem = f"cannot rebuild the run's protocols here ({exc})"

    def _object(self, image_id: str):
        """The item of an object (`image#k`) of an `--annotations` run, from its annotations
        (read once); None when they or the object cannot be found."""
        if self._objects is None:
            try:
                from ..data.annotations._objects import object_items

                items = object_items(self.config["annotations"], self.config.get("data"))
                self._objects = {item.image_id: item for item in items}
            except Exception:  # annotations moved or changed: no thumbnails, no failure
                self._objects = {}
        return self._objects.get(image_id)

    def source_path(self, image_id: str) -> Path | None:
        """Where the image file of `image_id` is now (None when it cannot be found)."""
        if self.config.get("annotations"):
            item = self._object(image_id)
            return Path(item.path) if item is not None and Path(item.path).is_file() else None
        data = self.config.get("data")
        if isinstance(data, list):  # a list of image paths: each id is the absolute path
            candidate = Path(image_id)
            if candidate.is_absolute() and candidate.is_file():
                return candidate
        elif data:
            root = Path(data)
            if root.is_dir():
                candidate = root / image_id
            else:
                candidate = Path(image_id)
                if not candidate.is_absolute():
                    candidate = root.parent / image_id
            if candidate.is_file() or candidate.is_dir():  # a frame folder is a folder
                return candidate
            if root.is_dir() and root.name == image_id:  # DATA was one frame folder
                return root
        if self.config.get("samples") and image_id.startswith("sample/"):
            try:
                from ..data import sample_paths

                path = sample_paths().get(image_id.split("/", 1)[1])
            except Exception:
                path = None
            if path and Path(path).is_file():
                return Path(path)
        return None

    def _source(self, image_id: str, path: Path, request) -> torch.Tensor:
        """The protocol source of one image, decoded and prepared exactly as the audit did."""
        if self._cache is None or self._cache[0] != image_id:
            self._cache = (image_id, {})
        sources = self._cache[1]
        if request.key not in sources:
            from ..data._decode import decode_sources

            prep = self.preprocessing
            item = self._object(image_id) if self.config.get("annotations") else None
            made, _ = decode_sources(
                str(path), [request], prep.interpolation, prep.crop_pct, getattr(item, "box", None)
            )
            sources.update(made)
        return sources[request.key]

    def _sequence(self, image_id: str, path: Path, request) -> torch.Tensor:
        """A video's or frame folder's frames, read as the audit read them (cached)."""
        key = f"sequence:{image_id}"
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        from ..data._video import FrameSelection, read_sequence

        prep = self.preprocessing
        selection = FrameSelection(**self.options.frame_selection())
        frames, _ = read_sequence(path, request, selection, prep.interpolation, prep.crop_pct)
        self._cache = (key, frames)
        return frames

    def source_key(self, image_id: str, protocol_key: str) -> str | None:
        """What the views of `protocol_key` are made from (protocols with the same key share
        one decoded source), or None when that is not known here."""
        protocol = self.protocols.get(protocol_key)
        if self.problem or protocol is None:
            return None
        try:
            protocol = protocol.for_image(image_id)
            return "sequence" if protocol.reads_sequences else protocol.source().key
        except Exception:  # views() says why
            return None

    def views(self, image_id: str, protocol_key: str, views: list[int]) -> torch.Tensor | str:
        """`views` of one image in one protocol as the normalised tensors the model saw
        [len(views), 3, R, R], or the reason why they cannot be made (a string)."""
        if self.problem:
            return self.problem
        protocol = self.protocols.get(protocol_key)
        if protocol is None:
            return f"protocol '{protocol_key}' is not in the run's manifest"
        path = self.source_path(image_id)
        if path is None:
            return "the image file is no longer where the run found it"
        try:  # small work on one thread (see engine._threads), as the audit made the views
            with torch.inference_mode(), torch_threads(1):
                protocol = protocol.for_image(image_id)
                if protocol.reads_sequences:
                    source = self._sequence(image_id, path, protocol.source())
                else:
                    source = self._source(image_id, path, protocol.source())
                normalised = self.preprocessing.normalize(source)
                return torch.stack(self._views(protocol, normalised, views))
        except Exception as exc:  # an unreadable file must not end the report
            return f"cannot re-create the views ({type(exc).__name__}: {exc})"

    def view_pixels(
        self, image_id: str, protocol_key: str, views: list[int]
    ) -> list[np.ndarray] | str:
        """`views` of one image in one protocol as uint8 arrays [R, R, 3] (what the model saw,
        un-normalised), or the reason why they cannot be made (a string)."""
        made = self.views(image_id, protocol_key, views)
        if isinstance(made, str):
            return made
        prep = self.preprocessing
        arrays = []
        with torch.inference_mode(), torch_threads(1):
            for view in made:
                pixels = prep.to_pixels(view.float()).clamp(0, 1).mul(255).round()
                arrays.append(pixels.to(torch.uint8).permute(1, 2, 0).contiguous().numpy())
        return arrays

    def thumbnails(
        self, image_id: str, protocol_key: str, views: list[int]
    ) -> list[np.ndarray] | str:
        """`views` of one image in one protocol shrunk to `self.side` px (uint8 [side, side,
        3] each), or the reason why none can be made (a string)."""
        arrays = self.view_pixels(image_id, protocol_key, views)
        if isinstance(arrays, str):
            return arrays
        return [shrink(a, self.side) for a in arrays]

    @staticmethod
    def _views(protocol, source: torch.Tensor, views: list[int]) -> list[torch.Tensor]:
        """Views `views` of a sequence, made per run of consecutive indices (at most _BATCH
        at a time): protocols such as inpaint cost the same per view in a batch, so only the
        wanted views are made."""
        made: dict[int, torch.Tensor] = {}
        ordered = sorted(set(views))
        runs: list[list[int]] = []
        for k in ordered:
            if runs and k == runs[-1][-1] + 1 and len(runs[-1]) < _BATCH:
                runs[-1].append(k)
            else:
                runs.append([k])
        for run in runs:
            batch = protocol.make_views(source, range(run[0], run[-1] + 1))
            for k in run:
                made[k] = batch[k - run[0]]
        return [made[k] for k in views]
