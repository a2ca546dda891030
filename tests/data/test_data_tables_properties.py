"""Property-based tests of the label-file and file-list readers: random bytes never give
anything but a result or a one-line DataError, and random valid tables (any names, quoting,
separators, byte-order mark, header, line endings) read back exactly."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaggy.data._items import _list_entries, _read_label_rows, find_images
from jaggy.errors import DataError
from jaggy.models._classes import imagenet_synsets

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
EXTENSIONS = (".png", ".jpg", ".JPEG", ".webp")


def _outcome(call):
    try:
        return call()
    except DataError as exc:
        message = str(exc)
        assert message and "\n" not in message, message  # one line
        return None


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_as_labels_give_a_result_or_a_data_error(tmp_path, data):
    (tmp_path / "imgs").mkdir(exist_ok=True)
    (tmp_path / "imgs" / "a.png").write_bytes(b"")  # found, never decoded here
    labels = tmp_path / "labels.csv"
    labels.write_bytes(data)
    result = _outcome(lambda: find_images(tmp_path / "imgs", labels=labels))
    if result is not None:
        assert [i.image_id for i in result.items] == ["a.png"]
        assert result.items[0].label >= -1


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_as_a_file_list_give_a_result_or_a_data_error(tmp_path, data):
    listing = tmp_path / "list.txt"
    listing.write_bytes(data)
    result = _outcome(lambda: find_images(listing))
    if result is not None:
        assert result.items and all(i.label >= -1 for i in result.items)
        assert len({i.image_id for i in result.items}) == len(result.items)


@SETTINGS
@given(text=st.text(max_size=200))
def test_random_text_as_labels_gives_a_result_or_a_data_error(tmp_path, text):
    labels = tmp_path / "labels.csv"
    labels.write_text(text, encoding="utf-8")
    _outcome(lambda: _read_label_rows(labels))


def _name(delimiter: str):
    """Any file name: separators, quotes, spaces, line breaks and non-ASCII included, but no
    blanks around it (fields are stripped) and no leading '#' (a comment)."""
    forbidden = "\x00" + ("\t" if delimiter == "," else "")
    stem = st.text(
        alphabet=st.characters(blacklist_characters=forbidden, blacklist_categories=("Cs",)),
        min_size=1,
        max_size=12,
    )
    return st.builds(lambda s, e: s.strip() + e, stem, st.sampled_from(EXTENSIONS)).filter(
        lambda n: not n.startswith("#") and n == n.strip() and len(n) > 5
    )


def _label():
    synsets = imagenet_synsets()
    index = st.integers(0, 999)
    return st.one_of(
        index.map(lambda i: (str(i), i)),
        index.map(lambda i: (synsets[i], i)),
    )


@st.composite
def tables(draw):
    delimiter = draw(st.sampled_from([",", "\t"]))
    rows = draw(
        st.lists(
            st.tuples(_name(delimiter), _label()),
            min_size=1,
            max_size=8,
            unique_by=lambda r: r[0],
        )
    )
    header = draw(st.booleans())
    bom = draw(st.booleans())
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    if any("\r" in name for name, _ in rows):
        quoting = csv.QUOTE_ALL  # Python's writer leaves a lone CR unquoted under "\n" endings
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=ending, quoting=quoting)
    if header:
        writer.writerow(["file", "class"])
    for name, (text, _) in rows:
        writer.writerow([name, text])
    encoded = ("\ufeff" if bom else "") + buffer.getvalue()
    return encoded.encode("utf-8"), {name: index for name, (_, index) in rows}


@SETTINGS
@given(table=tables())
def test_valid_label_tables_read_back_exactly(tmp_path, table):
    data, expected = table
    labels = tmp_path / "labels.csv"
    labels.write_bytes(data)
    mapping, _ = _read_label_rows(labels)
    assert mapping == expected


@SETTINGS
@given(table=tables())
def test_valid_file_lists_read_back_exactly(tmp_path, table):
    data, expected = table
    listing = tmp_path / "list.txt"
    listing.write_bytes(data)
    entries = _list_entries(listing)
    assert {name: label for name, _, label in entries} == expected
    assert [Path(path) for _, path, _ in entries] == [tmp_path / name for name, _, _ in entries]
