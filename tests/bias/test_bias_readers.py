"""Annotation readers: every bad-record kind is skipped and counted; a malformed file of each
format gives an error naming the file and the line or record; pycocotools sees the same boxes."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from bias_files import CLASSES, SIZES, known_boxes, voc_xml, write_coco, write_images

from jaggy.data.annotations import AnnotationError, guess_format, read_annotations

GOOD = known_boxes(8)


# ---- COCO -------------------------------------------------------------------------------


def test_coco_bad_records_are_skipped_by_reason(tmp_path):
    bad = [
        {"id": 900, "image_id": 100, "category_id": 10, "bbox": [1, 1, 0, 5]},  # zero width
        {"id": 901, "image_id": 100, "category_id": 10, "bbox": [1, 1, 5, -2]},  # negative
        {"id": 902, "image_id": 100, "category_id": 10, "bbox": [60, 1, 10, 5]},  # 70 > 64
        {"id": 903, "image_id": 999, "category_id": 10, "bbox": [1, 1, 5, 5]},  # no image
        {"id": 904, "image_id": 100, "category_id": 77, "bbox": [1, 1, 5, 5]},  # no class
        {"id": 905, "image_id": 555, "category_id": 10, "bbox": [1, 1, 5, 5]},  # no size
        {"id": 906, "image_id": 100, "category_id": 10, "bbox": [0, 1, 64.5, 5]},  # tolerated
    ]
    path = write_coco(
        tmp_path / "i.json",
        GOOD,
        extra_annotations=bad,
        extra_images=[{"id": 555, "file_name": "nosize.png"}],
    )
    a = read_annotations(path)
    assert a.skipped == Counter(
        {
            "non_positive_size": 2,
            "outside_image": 1,
            "unknown_image": 1,
            "unknown_class": 1,
            "missing_image_size": 1,
        }
    )
    assert a.n_boxes == len(GOOD) + 1
    assert a.x1[-1] == 64  # the tolerated box is clipped to its image
    assert "903" in a.skipped_examples["unknown_image"]


@pytest.mark.parametrize(
    "text, where",
    [
        ('{"images": [], "annotations": [', "i.json:1:"),
        (
            '{"images": [{"id": 1, "file_name": "a"}], "annotations": [{"image_id": 1, '
            '"category_id": 1}], "categories": []}',
            "annotations[0]",
        ),
        (
            '{"images": [{"id": 1, "file_name": "a"}], "annotations": [{"image_id": 1, '
            '"category_id": 1, "bbox": [1, 2, "x", 4]}], "categories": []}',
            "annotations[0]",
        ),
        ('{"images": [{"file_name": "a"}], "annotations": [], "categories": []}', "images[0]"),
        (
            '{"images": [{"id": 1, "file_name": "a", "width": "wide"}], "annotations": []}',
            "images[0]",
        ),
        ("[1, 2, 3]", "not a COCO instances file"),
    ],
)
def test_coco_malformed_file_names_file_and_record(tmp_path, text, where):
    path = tmp_path / "i.json"
    path.write_text(text)
    with pytest.raises(AnnotationError) as info:
        read_annotations(path)
    assert str(path) in str(info.value) and where in str(info.value)


def test_coco_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "i.json"
    path.write_text('{\n"images": [],\n"annotations": [}\n')
    with pytest.raises(AnnotationError, match=r"i\.json:3:\d+: not valid JSON"):
        read_annotations(path)


def test_coco_reader_matches_pycocotools(tmp_path):
    coco_module = pytest.importorskip("pycocotools.coco")
    boxes = known_boxes(50, seed=5)
    path = write_coco(tmp_path / "i.json", boxes)
    reference = coco_module.COCO(str(path))
    a = read_annotations(path)
    ours: dict[str, list] = {}
    for i, c, *corners in zip(a.box_image, a.box_class, a.x0, a.y0, a.x1, a.y1, strict=True):
        ours.setdefault(a.image_ids[i], []).append((a.class_names[c], *corners))
    theirs: dict[str, list] = {}
    for image_id, anns in reference.imgToAnns.items():
        name = reference.imgs[image_id]["file_name"]
        for ann in anns:
            x, y, w, h = ann["bbox"]
            cls = reference.cats[ann["category_id"]]["name"]
            theirs.setdefault(name, []).append((cls, x, y, x + w, y + h))
    assert {k: sorted(v) for k, v in ours.items()} == {k: sorted(v) for k, v in theirs.items()}


# ---- VOC / ImageNet XML -------------------------------------------------------------------


def test_voc_bad_records_are_skipped_by_reason(tmp_path):
    folder = tmp_path / "voc"
    folder.mkdir()
    (folder / "a.xml").write_text(
        voc_xml(
            "a.png",
            (64, 48),
            [
                (CLASSES[0], 5, 5, 20, 20),  # good
                (CLASSES[0], 20, 5, 10, 20),  # xmax < xmin
                (CLASSES[0], 5, 5, 80, 20),  # beyond the width
                ("n99999999", 5, 5, 20, 20),  # not an ImageNet synset
                ("dog", 1, 1, 64, 48),  # a free-text VOC name: fine
                (CLASSES[0], "nan", 5, 20, 20),  # parses as a number, but not a finite one
            ],
        )
    )
    (folder / "b.xml").write_text(voc_xml("b.png", None, [(CLASSES[1], 1, 1, 5, 5)]))
    a = read_annotations(folder)
    assert a.skipped == Counter(
        {
            "non_positive_size": 1,
            "outside_image": 1,
            "unknown_class": 1,
            "missing_image_size": 1,
            "non_finite_coordinates": 1,
        }
    )
    assert a.n_boxes == 2
    assert (a.x0[0], a.y0[0], a.x1[0], a.y1[0]) == (4, 4, 20, 20)  # 1-based, ends included
    assert (a.x0[1], a.x1[1], a.y1[1]) == (0, 64, 48)


@pytest.mark.parametrize(
    "text, where",
    [
        ("<annotation><filename>a.png</filename><object>", r"a\.xml:1:\d+: not well-formed"),
        (
            "<annotation><filename>a.png</filename><object><name>x</name><bndbox><xmin>1</xmin>"
            "<ymin>1</ymin><xmax>oops</xmax><ymax>3</ymax></bndbox></object></annotation>",
            r"a\.xml: object 0 <xmax> is 'oops'",
        ),
        (
            "<annotation><filename>a.png</filename><object><name>x</name></object></annotation>",
            r"a\.xml: object 0 \(x\) has no <bndbox>",
        ),
        ("<photo/>", r"a\.xml: root element is <photo>"),
        (
            '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "boom">]><annotation>&e;</annotation>',
            r"a\.xml: refused",
        ),
    ],
)
def test_voc_malformed_file_names_file_and_record(tmp_path, text, where):
    path = tmp_path / "a.xml"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=where):
        read_annotations(path)


# ---- ImageNet CSV -----------------------------------------------------------------------


def test_imagenet_csv_needs_the_image_folder(tmp_path):
    path = tmp_path / "LOC_val_solution.csv"
    path.write_text("ImageId,PredictionString\na,n01440764 1 1 5 5\n")
    with pytest.raises(AnnotationError, match="--images DIR"):
        read_annotations(path)


def test_imagenet_csv_bad_records_are_skipped_by_reason(tmp_path):
    images = write_images(tmp_path / "images")
    (images / "broken.png").write_bytes(b"not a png")
    path = tmp_path / "LOC_val_solution.csv"
    path.write_text(
        "ImageId,PredictionString\n"
        f"a,{CLASSES[0]} 1 1 10 10 {CLASSES[0]} 10 1 5 10 {CLASSES[0]} 1 1 99 10\n"
        f"missing,{CLASSES[0]} 1 1 5 5\n"
        f"b,n99999999 1 1 5 5\n"
        f"broken,{CLASSES[1]} 1 1 5 5\n"
    )
    a = read_annotations(path, images=images)
    assert a.n_boxes == 1
    assert a.skipped == Counter(
        {
            "non_positive_size": 1,
            "outside_image": 1,
            "unknown_image": 1,
            "unknown_class": 1,
            "missing_image_size": 1,
        }
    )
    assert a.n_images == 1 and a.image_ids[a.box_image[0]] == "a.png"


@pytest.mark.parametrize(
    "row, where",
    [
        ("a,n01440764 1 1 5", r"LOC\.csv:2: PredictionString has 4 tokens"),
        ("a,n01440764 1 one 5 5", r"LOC\.csv:2: box 0 .* not a number"),
        ("a,n01440764 1 1 5 5,extra", r"LOC\.csv:2: expected two fields"),
    ],
)
def test_imagenet_csv_malformed_file_names_file_and_line(tmp_path, row, where):
    images = write_images(tmp_path / "images")
    path = tmp_path / "LOC.csv"
    path.write_text(f"ImageId,PredictionString\n{row}\n")
    with pytest.raises(AnnotationError, match=where):
        read_annotations(path, images=images)


# ---- YOLO -------------------------------------------------------------------------------


def _yolo_dataset(tmp_path):
    root = tmp_path / "ds"
    write_images(root / "images" / "val")
    labels = root / "labels" / "val"
    labels.mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root, labels


def test_yolo_bad_records_are_skipped_by_reason_and_images_found_beside_labels(tmp_path):
    root, labels = _yolo_dataset(tmp_path)
    (root / "images" / "val" / "e.png").write_bytes(b"broken")
    (labels / "a.txt").write_text(
        "0 0.5 0.5 0.25 0.5\n"  # good: 16 x 24 px at the centre of 64 x 48
        "1 0.5 0.5 0 0.5\n"  # zero width
        "1 0.9 0.5 0.5 0.5\n"  # reaches x = 1.15 * 64
        "7 0.5 0.5 0.1 0.1\n"  # no class 7
    )
    (labels / "zz.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # no image zz.*
    (labels / "e.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # unreadable image
    (labels / "b.txt").write_text("")  # an image without boxes
    a = read_annotations(labels)
    assert a.format == "yolo"
    assert a.skipped == Counter(
        {
            "non_positive_size": 1,
            "outside_image": 1,
            "unknown_class": 1,
            "unknown_image": 1,
            "missing_image_size": 1,
        }
    )
    assert (a.x0[0], a.y0[0], a.x1[0], a.y1[0]) == (24, 12, 40, 36)
    assert a.class_names[a.box_class[0]] == CLASSES[0]


@pytest.mark.parametrize(
    "line, where",
    [
        ("0 0.5 0.5 0.1", r"a\.txt:2: expected 'class cx cy w h' \(5 fields\), got 4"),
        ("cat 0.5 0.5 0.1 0.1", r"a\.txt:2: class 'cat' is not an integer"),
        ("0 0.5 half 0.1 0.1", r"a\.txt:2: cx cy w h must be numbers"),
    ],
)
def test_yolo_malformed_file_names_file_and_line(tmp_path, line, where):
    _, labels = _yolo_dataset(tmp_path)
    (labels / "a.txt").write_text(f"0 0.5 0.5 0.1 0.1\n{line}\n")
    with pytest.raises(AnnotationError, match=where):
        read_annotations(labels)


def test_yolo_without_images_asks_for_them(tmp_path):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    (folder / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(AnnotationError, match="--images DIR"):
        read_annotations(folder)


# ---- format guessing ----------------------------------------------------------------------


def test_format_is_guessed_and_unknown_files_are_refused(tmp_path):
    write_coco(tmp_path / "x.json", GOOD)
    assert guess_format(tmp_path / "x.json") == "coco"
    (tmp_path / "x.csv").write_text("")
    assert guess_format(tmp_path / "x.csv") == "imagenet-csv"
    (tmp_path / "notes.md").write_text("hi")
    with pytest.raises(AnnotationError, match="--format"):
        read_annotations(tmp_path / "notes.md")
    with pytest.raises(AnnotationError, match="do not exist"):
        read_annotations(tmp_path / "nope.json")
    assert json.loads((tmp_path / "x.json").read_text())["images"][0]["width"] == SIZES["a.png"][0]
