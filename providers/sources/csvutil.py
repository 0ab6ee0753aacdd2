"""Shared CSV reading for the OneRoster and SDS readers.

What it copes with, so the readers do not have to:

* a UTF-8 byte-order mark, CRLF or LF line ends, quoted cells with commas and line breaks;
* header names in any case and spacing (``SIS ID``, ``sis id``, ``SISID``, ``Sis_Id`` are one
  column), empty trailing header cells (``a,b,,``) and blank lines;
* file names in any case (``Users.csv``, ``USERS.CSV``), in a directory or in a ``.zip``
  (at its root or in its one top-level folder);
* line numbers: every row knows the physical line it starts on, so errors can name
  file, line and column.

Must-not: keep a password. Any column whose name contains "password" is dropped as the file is
parsed, so no password cell reaches a reader, the model, an error or a log line.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reconciler.errors import SourceError

__all__ = ["CsvFolder", "Row", "Table", "norm_header", "open_folder", "split_multi"]


def norm_header(name: str) -> str:
    """The comparison form of a header name: case-folded, without spaces, ``_`` or ``-``."""
    return "".join(ch for ch in name.strip().casefold() if ch not in " _-\t")


def split_multi(value: str) -> tuple[str, ...]:
    """Split a multi-value cell (``"09,10,11"``) into its non-empty, stripped parts."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: the line it starts on and its cells keyed by normalised header."""

    line: int
    cells: dict[str, str]


class Table:
    """One CSV file read into rows. Columns are looked up by any of their aliases."""

    def __init__(self, file: str, header: Sequence[str], rows: list[Row], header_line: int = 1) -> None:
        self.file = file
        self.header = tuple(header)
        self.header_line = header_line
        self.rows = rows
        self._names = {norm_header(h): h.strip() for h in header if h.strip()}
        self._keys = set(self._names)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def has(self, *aliases: str) -> bool:
        return any(norm_header(a) in self._keys for a in aliases)

    def header_name(self, key: str) -> str:
        """The header's own spelling of a column key (for messages)."""
        return self._names.get(key, key)

    def opt(self, *aliases: str) -> str | None:
        """The normalised key of the first alias present, or ``None``."""
        for alias in aliases:
            key = norm_header(alias)
            if key in self._keys:
                return key
        return None

    def col(self, *aliases: str) -> str:
        """Like :meth:`opt`, but must raise :class:`SourceError` naming the file and the column
        when none of the aliases is in the header."""
        key = self.opt(*aliases)
        if key is None:
            names = " or ".join(repr(a) for a in aliases)
            raise SourceError(
                f"required column {names} is missing from the header; add it (header names are "
                "matched ignoring case and spaces)",
                file=self.file,
                line=self.header_line,
                column=aliases[0],
            )
        return key

    def get(self, row: Row, key: str | None) -> str:
        """The stripped cell for a key from :meth:`column` (``""`` when the column is absent)."""
        return row.cells.get(key, "") if key else ""

    def need(self, row: Row, key: str | None, name: str) -> str:
        """A non-empty cell, else :class:`SourceError` naming file, line and column."""
        value = self.get(row, key)
        if not value:
            raise SourceError(
                f"{name} is empty; every row needs one", file=self.file, line=row.line, column=name
            )
        return value

    def error(self, row: Row, column: str | None, message: str) -> SourceError:
        return SourceError(message, file=self.file, line=row.line, column=column)


def parse_csv(data: bytes, file: str) -> Table:
    """Parse CSV bytes into a :class:`Table`.

    Must raise :class:`SourceError` for a file that is empty (no header), is not UTF-8, repeats
    a header name, or has a row with more non-empty cells than the header has names.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(
            "the file is not UTF-8 text; save it as UTF-8 (CSV UTF-8 in Excel)", file=file, line=line
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 1
    keys: list[str] = []
    keep: list[tuple[int, str]] = []  # (index, key) of the columns kept: named, not a password
    rows: list[Row] = []
    start = 1
    try:
        for record in reader:
            line = start
            start = reader.line_num + 1
            if not "".join(record).strip():
                continue
            if header is None:
                header, header_line = record, line
                keys = [norm_header(h) for h in record]
                seen: set[str] = set()
                for name, key in zip(record, keys, strict=True):
                    if key and key in seen:
                        raise SourceError("header names this column twice", file=file, line=line, column=name)
                    seen.add(key)
                keep = [(i, k) for i, k in enumerate(keys) if k and "password" not in k]
                continue
            if len(record) > len(keys) and any(c.strip() for c in record[len(keys) :]):
                raise SourceError(
                    f"row has {len(record)} cells but the header names {len(keys)} columns",
                    file=file,
                    line=line,
                )
            n = len(record)
            cells = {k: record[i].strip() for i, k in keep if i < n}
            rows.append(Row(line, cells))
    except csv.Error as exc:
        raise SourceError(f"unreadable CSV: {exc}", file=file, line=reader.line_num) from None
    if header is None:
        raise SourceError("the file is empty: it needs at least a header row", file=file, line=1)
    return Table(file, header, rows, header_line)


class CsvFolder:
    """A set of CSV files by name, from a directory or a zip, found ignoring the names' case."""

    def __init__(self, label: str, files: dict[str, tuple[str, bytes | Path]]) -> None:
        self.label = label
        self._files = files  # casefolded name -> (display name, bytes or path)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(display for display, _ in self._files.values()))

    def has(self, name: str) -> bool:
        return name.casefold() in self._files

    def display(self, name: str) -> str:
        return self._files[name.casefold()][0] if self.has(name) else f"{self.label}/{name}"

    def read(self, name: str) -> Table:
        """Read one file. Must raise :class:`SourceError` if it is missing."""
        entry = self._files.get(name.casefold())
        if entry is None:
            raise SourceError(f"required file {name} is missing from {self.label}", file=self.display(name))
        display, content = entry
        data = content.read_bytes() if isinstance(content, Path) else content
        return parse_csv(data, display)


def _index(label: str, items: list[tuple[str, str, bytes | Path]]) -> CsvFolder:
    files: dict[str, tuple[str, bytes | Path]] = {}
    for name, display, content in items:
        key = name.casefold()
        if key in files:
            raise SourceError(
                f"two files differ only in case ({files[key][0]} and {display}); keep one", file=label
            )
        files[key] = (display, content)
    return CsvFolder(label, files)


def open_folder(path: Path) -> CsvFolder:
    """Open a directory or a ``.zip`` of CSV files.

    Must raise :class:`SourceError` when the path does not exist, is not a directory or zip, or
    holds no ``.csv`` file. In a zip, the CSVs are taken from its root, or from its single
    top-level folder when the root has none.
    """
    label = str(path)
    items: list[tuple[str, str, bytes | Path]]
    if path.is_dir():
        csvs = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() == ".csv"]
        items = [(p.name, str(p), p) for p in csvs]
    elif path.is_file() and zipfile.is_zipfile(path):
        items = _zip_items(path)
    elif path.exists():
        raise SourceError("expected a directory or a .zip of CSV files", file=label)
    else:
        raise SourceError("the source does not exist; check the path", file=label)
    if not items:
        raise SourceError("no .csv files found: the source is empty", file=label)
    return _index(label, items)


def _zip_items(path: Path) -> list[tuple[str, str, bytes | Path]]:
    with zipfile.ZipFile(path) as zf:
        members = [
            PurePosixPath(i.filename)
            for i in zf.infolist()
            if not i.is_dir()
            and i.filename.lower().endswith(".csv")
            and not i.filename.startswith("__MACOSX")
        ]
        chosen = [m for m in members if len(m.parts) == 1]
        if not chosen:
            tops = {m.parts[0] for m in members if len(m.parts) == 2}
            if len(tops) == 1:
                chosen = [m for m in members if len(m.parts) == 2]
        return [(m.name, f"{path}!{m}", zf.read(str(m))) for m in sorted(chosen)]
