"""Image sizes read lazily from the headers of a folder's images (for formats without sizes)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .._items import IMAGE_EXTENSIONS


class ImageFolderIndex:
    """The images under `folder`, found by relative path, file name or file stem.

    Built by one walk of the folder; sizes are read only when asked (PIL reads the header,
    not the pixels), and each at most once.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._by_key: dict[str, Path] = {}
        ambiguous: set[str] = set()
        for file in sorted(self.folder.rglob("*")):
            if not file.is_file() or file.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            relative = file.relative_to(self.folder).as_posix()
            self._by_key[relative] = file
            for key in (file.name, file.stem, relative.rsplit(".", 1)[0]):
                if key in self._by_key and self._by_key[key] != file:
                    ambiguous.add(key)
                self._by_key.setdefault(key, file)
        for key in ambiguous:  # two files share a name: only their full relative path finds them
            self._by_key.pop(key, None)
        self._sizes: dict[Path, tuple[int, int] | None] = {}

    def __len__(self) -> int:
        return len({p for p in self._by_key.values()})

    def find(self, image_id: str) -> Path | None:
        """The file of `image_id` (relative path, name, or name without extension)."""
        key = image_id.replace("\\", "/")
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key.get(Path(key).name) or self._by_key.get(Path(key).stem)
        return found

    def relative_id(self, file: Path) -> str:
        return file.relative_to(self.folder).as_posix()

    def size(self, file: Path) -> tuple[int, int] | None:
        """(width, height) in pixels from the header, None when it cannot be read. EXIF
        orientation is applied (jaggy decodes images upright), so the size is the upright
        one."""
        if file not in self._sizes:
            self._sizes[file] = _header_size(file)
        return self._sizes[file]


def _header_size(file: Path) -> tuple[int, int] | None:
    try:
        with Image.open(file) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except Exception:  # PIL raises many types for unreadable files
        return None
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees
        width, height = height, width
    return width, height
