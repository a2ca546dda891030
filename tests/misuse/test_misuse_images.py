"""Image folders with symbolic links, and images near the pixel cap."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from misuse_conftest import TINY_AUDIT, run_jaggy, snapshot

from conftest import write_synthetic_images
from jaggy.data._decode import MAX_PIXELS, ImageDecodeError, decode_image
from jaggy.data._items import find_images


def test_symlinked_sub_folders_are_searched_once(capsys, tmp_path):
    data = tmp_path / "data"
    write_synthetic_images(data / "own", 1, side=40)
    write_synthetic_images(tmp_path / "elsewhere", 2, side=40)
    (data / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (data / "loop").symlink_to(data, target_is_directory=True)  # must not recurse forever
    ids = [item.image_id for item in find_images(data).items]
    assert ids == ["linked/img000.png", "linked/img001.png", "own/img000.png"]
    before = snapshot(tmp_path / "elsewhere")
    code, err = run_jaggy(
        capsys,
        "audit",
        "py:tinynets:tiny",
        data,
        "--protocol",
        "crop",
        "--out",
        tmp_path / "out",
        *TINY_AUDIT,
    )
    assert code == 0, err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["images"]["used"] == 3
    assert snapshot(tmp_path / "elsewhere") == before


def _png_header(path, width, height):
    """A PNG whose header claims width x height and whose pixel data is cut off."""

    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"x\x9c"))


def test_the_pixel_cap_is_200_megapixels(tmp_path):
    assert MAX_PIXELS == 200_000_000
    below = tmp_path / "below.png"  # 144 MP: above PIL's own 89 MP warning, below jaggy's cap
    _png_header(below, 12_000, 12_000)
    above = tmp_path / "above.png"  # 225 MP
    _png_header(above, 15_000, 15_000)
    with pytest.raises(ImageDecodeError, match="^unreadable image"):  # cut off, not "huge"
        decode_image(str(below))
    with pytest.raises(ImageDecodeError) as refused:
        decode_image(str(above))
    assert str(refused.value) == "huge image (15000x15000 px > 200000000 px)"


def test_decoding_changes_no_process_wide_warning_filters(tmp_path, monkeypatch):
    # warnings filters are process-wide: a decoding thread that changed them would race with
    # the main thread's own catch_warnings (graph builds) and either side could lose its
    # filters; PIL's cap is restored after every image, whichever threads decode at once
    import threading
    import warnings

    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i, fmt in enumerate(["png", "jpeg", "gif"]):
        path = tmp_path / f"image{i}.{fmt}"
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    calls = []
    monkeypatch.setattr(warnings, "catch_warnings", lambda *a, **k: calls.append(a) or 1 / 0)
    monkeypatch.setattr(warnings, "simplefilter", lambda *a, **k: calls.append(a) or 1 / 0)
    cap = Image.MAX_IMAGE_PIXELS
    errors = []

    def decode_all():
        try:
            for _ in range(20):
                for path in paths:
                    decode_image(str(path))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=decode_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and calls == []
    assert Image.MAX_IMAGE_PIXELS == cap
    below = tmp_path / "below.png"  # 144 MP: refused as cut off, with no warning printed
    _png_header(below, 12_000, 12_000)
    with pytest.raises(ImageDecodeError, match="^unreadable image"):
        decode_image(str(below))
