"""Property-based tests of the annotation readers: random bytes in any format give a result or
a one-line DataError (never another exception), and random valid boxes written in every format
read back exactly."""

from __future__ import annotations

from bias_files import CLASSES, SIZES, Box, write_all_formats, write_images
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaggy.data.annotations import Annotations, read_annotations
from jaggy.errors import DataError

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _result_or_data_error(call) -> Annotations | None:
    try:
        result = call()
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc), str(exc)
        return None
    assert isinstance(result, Annotations)
    assert len(result.x0) == len(result.box_image) == len(result.box_class)
    assert (result.x1 > result.x0).all() and (result.y1 > result.y0).all()
    return result


def _json_like():
    """Random bytes biased towards the shape of a COCO file, so the parser gets far."""
    leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.floats(), st.text())
    value = st.recursive(
        leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner)
    )
    keys = st.sampled_from(["images", "annotations", "categories", "id", "bbox", "file_name"])
    return st.dictionaries(keys, value, max_size=4)


@SETTINGS
@given(data=st.binary(max_size=300), fmt=st.sampled_from(["coco", "imagenet-csv", "voc"]))
def test_random_bytes_in_a_file_format(tmp_path, data, fmt):
    name = {"coco": "i.json", "imagenet-csv": "LOC_val_solution.csv", "voc": "a.xml"}[fmt]
    path = tmp_path / name
    path.write_bytes(data)
    images = write_images(tmp_path / "images") if fmt == "imagenet-csv" else None
    _result_or_data_error(lambda: read_annotations(path, format=fmt, images=images))


@SETTINGS
@given(document=_json_like())
def test_random_json_documents_as_coco(tmp_path, document):
    import json

    path = tmp_path / "i.json"
    path.write_text(json.dumps(document))
    _result_or_data_error(lambda: read_annotations(path, format="coco"))


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_in_a_yolo_folder(tmp_path, data):
    folder = tmp_path / "yolo"
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_bytes(data)
    images = write_images(tmp_path / "images")
    _result_or_data_error(lambda: read_annotations(folder, format="yolo", images=images))


@st.composite
def boxes(draw):
    """Integer boxes inside their images (jaggy's corners, origin top-left)."""
    out = []
    for _ in range(draw(st.integers(1, 12))):
        image = draw(st.sampled_from(sorted(SIZES)))
        width, height = SIZES[image]
        x0 = draw(st.integers(0, width - 1))
        y0 = draw(st.integers(0, height - 1))
        x1 = draw(st.integers(x0 + 1, width))
        y1 = draw(st.integers(y0 + 1, height))
        out.append(Box(image, draw(st.sampled_from(CLASSES)), x0, y0, x1, y1))
    return out


@settings(SETTINGS, max_examples=20)
@given(written=boxes())
def test_random_valid_boxes_read_back_in_every_format(tmp_path_factory, written):
    root = tmp_path_factory.mktemp("formats")
    expected = sorted((b.image, b.cls, b.x0, b.y0, b.x1, b.y1) for b in written)
    for fmt, (path, images) in write_all_formats(root, written).items():
        a = _result_or_data_error(lambda p=path, i=images: read_annotations(p, images=i))
        assert a is not None, fmt
        got = sorted(
            (
                a.image_ids[i] if "." in a.image_ids[i] else a.image_ids[i] + ".png",
                a.class_names[c],
                round(float(x0), 6),
                round(float(y0), 6),
                round(float(x1), 6),
                round(float(y1), 6),
            )
            for i, c, x0, y0, x1, y1 in zip(
                a.box_image, a.box_class, a.x0, a.y0, a.x1, a.y1, strict=True
            )
        )
        assert got == expected, fmt
        assert sum(a.skipped.values()) == 0, fmt
