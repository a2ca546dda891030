"""Misused label files and file lists: each case is an error naming the row (exit 2, before any
work) or is read correctly and recorded; the user's files are never touched."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from misuse_conftest import TINY_AUDIT, run_jaggy, snapshot

from conftest import write_synthetic_images
from jaggy.data._items import find_images


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    write_synthetic_images(folder, 3, side=40)
    return folder


def audit(capsys, data, out, *extra):
    return run_jaggy(
        capsys,
        "audit",
        "py:tinynets:tiny",
        data,
        "--protocol",
        "crop",
        "--out",
        out,
        *TINY_AUDIT,
        *extra,
    )


def labels_by_image(out):
    table = pq.read_table(out / "predictions.parquet", columns=["image_id", "label"])
    return dict(zip(table["image_id"].to_pylist(), table["label"].to_pylist(), strict=True))


def test_byte_order_mark_without_header_keeps_the_first_label(capsys, images, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_bytes("\ufeffimg000.png,3\nimg001.png,4\n".encode())
    before = snapshot(tmp_path)
    code, err = audit(capsys, images, tmp_path / "out", "--labels", labels)
    assert code == 0, err
    assert labels_by_image(tmp_path / "out") == {"img000.png": 3, "img001.png": 4, "img002.png": -1}
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("out/")} == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "img000.png,3\nimg001.png,4\nimg000.png,5\n",
            "labels.csv:3: 'img000.png' is labelled 5 here but 3 on line 1; keep one label per image",
        ),
        ("file,class\nimg000.png,-2\n", "labels.csv:2: label -2 is negative"),
        ("img000.png,3\nimg001.png\n", "labels.csv:2: expected 'file,class'"),
        ("a.png,3\nb.png,4\n", "none of the 2 rows of --labels"),
        ('"img000.png,3\n', "labels.csv:1: --labels file row cannot be read as CSV/TSV"),
        ("img000.png,not_a_class_xyz\n", "labels.csv:1: unknown class 'not_a_class_xyz'"),
    ],
    ids=[
        "conflicting-duplicates",
        "negative",
        "one-column",
        "no-row-matches",
        "open-quote",
        "unknown-class",
    ],
)
def test_bad_label_rows_are_errors_naming_the_row(capsys, images, tmp_path, text, message):
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    before = snapshot(tmp_path)
    code, err = audit(capsys, images, tmp_path / "out", "--labels", labels)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback
    assert not (tmp_path / "out").exists()  # refused before any work
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file"),
        ("img000.png,caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 on line 1)"),
    ],
    ids=["binary", "latin-1"],
)
def test_a_label_file_that_is_not_text_is_refused(capsys, images, tmp_path, data, message):
    labels = tmp_path / "labels.csv"
    labels.write_bytes(data)
    code, err = audit(capsys, images, tmp_path / "out", "--labels", labels)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert labels.read_bytes() == data


def test_rows_matching_no_image_are_counted_with_examples(capsys, images, tmp_path):
    labels = tmp_path / "labels.tsv"
    labels.write_text("file\tclass\nimg000.png\t3\nghost.png\t4\n")
    code, err = audit(capsys, images, tmp_path / "out", "--labels", labels)
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "manifest.json").read_text())["images"]["labels"]
    assert report["rows"] == 2
    assert report["labelled_images"] == 1
    assert report["unmatched_rows"] == 1
    assert report["unmatched_examples"] == [{"name": "ghost.png", "line": 3}]


def test_a_file_name_shared_by_two_folders_is_ambiguous(capsys, tmp_path):
    write_synthetic_images(tmp_path / "data" / "a", 1, side=40)
    write_synthetic_images(tmp_path / "data" / "b", 1, side=40)
    labels = tmp_path / "labels.csv"
    labels.write_text("img000.png,3\n")
    code, err = audit(capsys, tmp_path / "data", tmp_path / "out", "--labels", labels)
    assert code == 2
    assert "'img000.png' names 2 images (a/img000.png, b/img000.png)" in err
    labels.write_text("a/img000.png,3\n")
    code, err = audit(capsys, tmp_path / "data", tmp_path / "out", "--labels", labels)
    assert code == 0, err
    assert labels_by_image(tmp_path / "out") == {"a/img000.png": 3, "b/img000.png": -1}


def test_commas_in_file_list_names_stay_in_the_name(capsys, images, tmp_path):
    (images / "img001.png").rename(images / "beach, sunset.png")
    (images / "img002.png").rename(images / "x,y.png")
    listing = tmp_path / "list.txt"
    listing.write_text(
        "imgs/img000.png,3\n"  # a label
        "imgs/beach, sunset.png\n"  # the whole line names a file
        '"imgs/x,y.png",4\n'  # quoted, with a label
    )
    before = snapshot(tmp_path)
    code, err = audit(capsys, listing, tmp_path / "out")
    assert code == 0, err
    assert labels_by_image(tmp_path / "out") == {
        "imgs/img000.png": 3,
        "imgs/beach, sunset.png": -1,
        "imgs/x,y.png": 4,
    }
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["images"]["skipped"] == []
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("out/")} == before


def test_unquoted_comma_in_a_labelled_file_list_row(images, tmp_path):
    (images / "img001.png").rename(images / "x,y.png")
    listing = tmp_path / "list.csv"
    listing.write_text("path,label\nimgs/x,y.png,4\n")
    items = find_images(listing).items
    assert [(i.image_id, i.label) for i in items] == [("imgs/x,y.png", 4)]


def test_a_file_list_naming_an_image_twice_is_refused(capsys, images, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("imgs/img000.png\nimgs/img001.png\nimgs/img000.png\n")
    code, err = audit(capsys, listing, tmp_path / "out")
    assert code == 2
    assert "list.txt:3: 'imgs/img000.png' is listed again (first on line 1)" in err
    assert not (tmp_path / "out").exists()
