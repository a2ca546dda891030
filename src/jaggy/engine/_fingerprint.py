"""What the images of a run were: per image its id, label, file size and modification time
(and, on request, a sha256 of its bytes). A resumed run compares them with what it finds now,
so an image replaced under the same name is noticed and named, not silently mixed in."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from ..data import ImageItem

EXAMPLES = 5  # file names shown per kind of change


@dataclass(frozen=True)
class ImageFingerprint:
    image_id: str
    label: int
    size: int  # bytes; -1 when the file cannot be read (it is then skipped with a reason)
    mtime_ns: int
    sha256: str = ""

    def key(self) -> tuple:
        """What must not change: with a content hash the bytes, not the modification time
        (a copy or a `touch` keeps the measurement valid)."""
        if self.sha256:
            return (self.image_id, self.label, self.size, self.sha256)
        return (self.image_id, self.label, self.size, self.mtime_ns)

    def to_row(self) -> list:
        return [self.image_id, self.label, self.size, self.mtime_ns, self.sha256]

    @classmethod
    def from_row(cls, row) -> ImageFingerprint:
        image_id, label, size, mtime_ns, sha = row
        return cls(str(image_id), int(label), int(size), int(mtime_ns), str(sha or ""))


def fingerprint_images(items: list[ImageItem], *, content: bool = False) -> list[ImageFingerprint]:
    """One fingerprint per image, in order. `content`: also hash every file's bytes (reads
    every image once; the default trusts size and modification time, like make and rsync)."""
    out = []
    for item in items:
        try:
            stat = os.stat(item.path)
            size, mtime = stat.st_size, stat.st_mtime_ns
        except OSError:
            size, mtime = -1, 0
        digest = _sha256(item.path) if content and size >= 0 else ""
        out.append(ImageFingerprint(item.image_id, item.label, size, mtime, digest))
    return out


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def fingerprints_digest(prints: list[ImageFingerprint]) -> str:
    digest = hashlib.sha256()
    for p in prints:
        digest.update(("\t".join(map(str, p.key())) + "\n").encode())
    return digest.hexdigest()


def describe_changes(before: list[ImageFingerprint], now: list[ImageFingerprint]) -> str:
    """'2 changed (a.png: size 10 -> 12 bytes, b.png: modified), 1 appeared (c.png)', or ''
    when nothing differs."""
    old = {p.image_id: p for p in before}
    new = {p.image_id: p for p in now}
    changed = []
    for image_id, p in new.items():
        q = old.get(image_id)
        if q is None or q.key() == p.key():
            continue
        if q.label != p.label:
            changed.append(f"{image_id}: label {q.label} -> {p.label}")
        elif q.size != p.size:
            changed.append(f"{image_id}: size {q.size} -> {p.size} bytes")
        elif q.sha256 and p.sha256 and q.sha256 != p.sha256:
            changed.append(f"{image_id}: content changed")
        else:
            changed.append(f"{image_id}: modified")
    appeared = [i for i in new if i not in old]
    disappeared = [i for i in old if i not in new]
    moved = not (changed or appeared or disappeared) and [p.image_id for p in before] != [
        p.image_id for p in now
    ]
    parts = []
    for what, names in (
        ("changed", changed),
        ("appeared", appeared),
        ("disappeared", disappeared),
    ):
        if names:
            shown = ", ".join(names[:EXAMPLES]) + (", ..." if len(names) > EXAMPLES else "")
            parts.append(f"{len(names)} {what} ({shown})")
    if moved:
        parts.append("the same images in another order")
    return "; ".join(parts)
