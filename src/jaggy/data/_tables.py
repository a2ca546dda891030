"""The user's small text tables (label files, file lists), read with a real CSV/TSV reader.

A table is UTF-8 text (a byte-order mark is dropped), one row per line; fields are separated by
tabs when any row has a tab, else by commas, and a field holding the separator, a quote or a
line break is quoted the CSV way ("my, photo.jpg"). Blank rows and rows whose first field starts
with '#' are comments. Every row keeps the number of the line it starts on, so that an error can
name it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError


@dataclass(frozen=True)
class TableRow:
    """One row: the fields (stripped of surrounding blanks), the 1-based line it starts on, and
    its text when the row is one physical line (else None)."""

    line: int
    fields: tuple[str, ...]
    text: str | None


@dataclass(frozen=True)
class TextTable:
    path: Path
    delimiter: str
    rows: tuple[TableRow, ...]

    def where(self, row: TableRow) -> str:
        return f"{self.path}:{row.line}"


def read_text_table(path: str | Path, what: str) -> TextTable:
    """Read `path` as a CSV/TSV table; `what` names the file in errors ('--labels file')."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"{what} '{path}' is a folder; give a CSV/TSV text file") from None
    except OSError as exc:
        raise DataError(f"cannot read {what} '{path}': {exc.strerror or exc}") from exc
    if b"\x00" in data:
        raise DataError(
            f"{what} '{path}' is a binary file (a NUL byte at offset {data.index(0)}), not a "
            "CSV/TSV text table; give a text file with one row per image"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{what} '{path}' is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "save it as UTF-8"
        ) from None
    lines = io.StringIO(text, newline="").readlines()  # the lines the reader counts
    delimiter = "\t" if any("\t" in ln for ln in lines if not ln.lstrip().startswith("#")) else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[TableRow] = []
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(
                f"{path}:{start}: {what} row cannot be read as CSV/TSV ({exc}); quote a name "
                'that holds the separator or a quote, doubling inner quotes: "my ""best"".jpg"'
            ) from None
        end = reader.line_num
        stripped = tuple(f.strip() for f in fields)
        if any(stripped) and not stripped[0].startswith("#"):
            single = lines[start - 1].strip() if end == start and start <= len(lines) else None
            rows.append(TableRow(start, stripped, single))
        start = end + 1
    return TextTable(path, delimiter, tuple(rows))
