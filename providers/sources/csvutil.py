"""Shared CSV reading for the OneRoster and SDS readers.

What it copes with, so the readers do not have to:

* a UTF-8 byte-order mark, CRLF or LF line ends, quoted cells with commas and line breaks;
* header names in any case and spacing (``SIS ID``, ``sis id``, ``SISID``, ``Sis_Id`` are one
  column), empty trailing header cells (``a,b,,``) and blank lines;
* line numbers: every row knows the physical line it starts on, so errors can name
  file, line and column.

What it refuses, naming file and line, rather than guessing: a file cut off inside a quoted cell
(Python's csv would silently swallow the rest of the file into one cell), text after a closing
quote, a NUL byte, a row with fewer or more cells than the header names (a cut-off or hand-edited
file), text that is not UTF-8. Files are found in a directory or a zip by :mod:`.csvfolder`.

Must-not: keep a password. Any column whose name contains "password" is dropped as the file is
parsed, so no password cell reaches a reader, the model, an error or a log line.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter

from reconciler.errors import SourceError

__all__ = ["Table", "norm_header", "parse_csv", "split_multi"]


def norm_header(name: str) -> str:
    """The comparison form of a header name: case-folded, without spaces, ``_`` or ``-``."""
    return "".join(ch for ch in name.strip().casefold() if ch not in " _-\t")


def split_multi(value: str) -> tuple[str, ...]:
    """Split a multi-value cell (``"09,10,11"``) into its non-empty, stripped parts."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


class Table:
    """One CSV file read into columns: each kept column's cells top to bottom, and each row's
    physical line. Columns, not a dict or a tuple per row: a trust's enrolments file has hundreds
    of thousands of rows, and the readers go down a column in one pass (:meth:`column`) instead
    of looking up cell after cell. Repeated cell values in a column (status, dates, class and
    user ids) are one string. Columns are looked up by any of their aliases."""

    def __init__(
        self,
        file: str,
        header: Sequence[str],
        columns: Mapping[str, Sequence[str]],
        lines: Sequence[int],
        header_line: int = 1,
        unread: frozenset[str] = frozenset(),
    ) -> None:
        self.file = file
        self.header = tuple(header)
        self.header_line = header_line
        self.lines = lines  # row index -> the physical line the row starts on
        self._names = {norm_header(h): h.strip() for h in header if h.strip()}
        self._keys = set(self._names)
        self._columns = columns  # key -> cells (the kept columns: named, not a password)
        self._unread = unread  # keys of columns the reader did not ask for

    def __len__(self) -> int:
        return len(self.lines)

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

    def column(self, key: str | None) -> Sequence[str]:
        """The stripped cells of a column from :meth:`col` or :meth:`opt`, one per row (all
        ``""`` when the column is absent or a password). Must raise :class:`LookupError` for a
        column in the header that the table was read without (``parse_csv(only=...)``)."""
        cells = self._columns.get(key) if key else None
        if cells is None and key in self._unread:  # a reader's bug, not the file's
            raise LookupError(f"{self.file}: column {key!r} was not read; add it to the columns read")
        return ("",) * len(self.lines) if cells is None else cells

    def line(self, row: int) -> int:
        """The physical line row ``row`` (an index into the columns) starts on."""
        return self.lines[row]

    def empty(self, row: int, name: str) -> SourceError:
        """The error for a required cell that is empty."""
        return self.error(row, name, f"{name} is empty; every row needs one")

    def error(self, row: int, column: str | None, message: str) -> SourceError:
        return SourceError(message, file=self.file, line=self.lines[row], column=column)


#: a line with its end, split as ``io.StringIO(text, newline="")`` does (which holds 4 bytes a
#: character: 100 MiB for a trust's 25 MiB enrolments file)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_group = re.Match.group
#: what ``str.splitlines`` also ends a line at, and a CSV line does not
_OTHER_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
#: characters of text split into lines at a time
SLICE_CHARS = 1 << 16

#: the longest cell the csv reader takes (it refuses a longer one)
_FIELD_LIMIT = csv.field_size_limit()
#: rows read before deciding which columns are ids (values mostly distinct, not worth sharing)
PROBE_ROWS = 4096


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _other_breaks(piece: str) -> bool:
    """Whether ``piece`` holds a character ``str.splitlines`` ends a line at and CSV does not."""
    return any(c in piece for c in _OTHER_BREAKS)


def _slice_lines(piece: str) -> list[str]:
    """The lines of ``piece`` with their ends, split at ``\r\n``, ``\r`` and ``\n`` only."""
    if _other_breaks(piece):
        return list(map(_group, _LINE.finditer(piece)))
    return piece.splitlines(keepends=True)  # the same lines, and 2x as fast


def _slices(text: str, end: int, start: int = 0) -> Iterator[str]:
    """``text[start:end]`` in pieces of about :data:`SLICE_CHARS`, each ending after a ``\n``."""
    while start < end:
        cut = text.find("\n", min(start + SLICE_CHARS, end) - 1, end)
        cut = end if cut < 0 else cut + 1
        yield text[start:cut]
        start = cut


def _lines(text: str, end: int | None = None) -> Iterator[str]:
    """The lines of ``text`` (up to ``end``), each with its line end; a slice of the text at a
    time, so they are never all in memory at once."""
    return chain.from_iterable(map(_slice_lines, _slices(text, len(text) if end is None else end)))


def parse_csv(data: bytes, file: str, only: Collection[str] | None = None) -> Table:
    """Parse CSV bytes into a :class:`Table`; with ``only`` (header names in any spelling), keep
    only those columns (a reader's own: an export has many it does not use).

    Must raise :class:`SourceError` naming the file and line for a file that is empty (no
    header), is not UTF-8, holds a NUL byte, repeats a header name, ends inside a quoted cell,
    has text after a closing quote, or has a row with more non-empty cells than the header has
    names or fewer cells than it has named columns.

    A regular file (one line a row, every row as many cells as the header, no blank row) is read
    a chunk of rows at a time with no Python code per cell (:func:`_parse_regular`); any other
    file, and any file with a fault, is read row by row (:func:`_parse_rows`), which gives the
    same table and is the one place faults are worded.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(
            "the file is not UTF-8 text; save it as UTF-8 (CSV UTF-8 in Excel)", file=file, line=line
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise SourceError(
            "the file holds a NUL byte: it is damaged or not a CSV text file; export it again",
            file=file,
            line=_line_of(text, nul),
        )
    keys = None if only is None else frozenset(map(norm_header, only))
    table = _parse_regular(text, file, keys)
    return table if table is not None else _parse_rows(text, file, keys)


@dataclass(frozen=True, slots=True)
class _Header:
    record: list[str]
    line: int
    width: int  # cells a row has: the header's
    named: int  # cells a row needs: up to the header's last named column
    keep: list[tuple[int, str]]  # (index, key) of the columns kept: named, not a password
    unread: frozenset[str]  # keys of the named columns not asked for


def _header(record: list[str], line: int, file: str, only: frozenset[str] | None) -> _Header:
    """Must raise :class:`SourceError` for a header that names a column twice."""
    keys = [norm_header(h) for h in record]
    seen: set[str] = set()
    for name, key in zip(record, keys, strict=True):
        if key and key in seen:
            raise SourceError("header names this column twice", file=file, line=line, column=name)
        seen.add(key)
    keep = [(i, k) for i, k in enumerate(keys) if k and "password" not in k]
    unread = frozenset(k for _, k in keep if only is not None and k not in only)
    keep = [(i, k) for i, k in keep if k not in unread]
    named = max((i + 1 for i, k in enumerate(keys) if k), default=0)
    return _Header(record, line, len(keys), named, keep, unread)


def _parse_regular(text: str, file: str, only: frozenset[str] | None = None) -> Table | None:
    """The table of a regular file, or ``None`` when the file is not regular (then
    :func:`_parse_rows` reads it, and words its faults): a header on line 1 and every row on one
    line of exactly the header's cells, with a kept cell that is not blank. Trailing line ends
    (blank lines at the end) are allowed.

    Read a slice of the text at a time (:func:`_slices`): the cells of a slice with no quote
    are split at its commas (:func:`_plain_columns`), any other slice's by the csv reader
    (:func:`_quoted_columns`)."""
    end = len(text)
    while end and text[end - 1] in "\r\n":
        end -= 1  # not text.rstrip(): that would copy the text
    first = _LINE.match(text, 0, end)
    if first is None:
        return None
    try:
        record = next(csv.reader([first.group()], strict=True), None)
    except csv.Error:
        return None  # the header goes on past line 1, or is not CSV
    if record is None:
        return None
    if not "".join(record).strip():
        return None
    head = _header(record, 1, file, only)
    if not head.keep:
        return None
    cells: list[list[str]] = [[] for _ in head.keep]
    shared = [True for _ in head.keep]  # hold a column's repeated values once (sys.intern)
    probing = True
    rows = 0
    kept = [i for i, _ in head.keep]
    for piece in _slices(text, end, first.end()):
        found = _plain_columns(piece, head.width, kept) if '"' not in piece else None
        if found is None:
            found = _quoted_columns(piece, head.width, kept)
            if found is None:
                return None  # a row over several lines, of another width, or not CSV
        part = [list(map(str.strip, column)) for column in found]
        if "" in part[0] and not all(map(any, zip(*part, strict=True))):
            return None  # a row whose kept cells are all blank
        rows += len(part[0])
        for out, values, share in zip(cells, part, shared, strict=True):
            out.extend(map(sys.intern, values) if share else values)
        if probing and rows > PROBE_ROWS:
            # a column of ids (more than half its values distinct) gains nothing from
            # sharing, and interning every id costs a dict entry each
            shared = [2 * len(set(out)) <= len(out) for out in cells]
            probing = False
    columns = {key: out for (_, key), out in zip(head.keep, cells, strict=True)}
    return Table(file, record, columns, range(2, rows + 2), unread=head.unread)


def _plain_columns(piece: str, width: int, kept: list[int]) -> list[Sequence[str]] | None:
    """The cells (not stripped) of the columns ``kept`` in a slice without quotes, or ``None``
    when it is not that simple: its cells are then what its commas part, as the csv reader
    parses them, when every line is a row of ``width`` cells."""
    if "\r" in piece and piece.count("\r") != piece.count("\r\n"):
        return None  # a line ended by a lone \r
    if _other_breaks(piece):
        return None
    lines = piece.split("\n")
    if lines[-1] == "":
        lines.pop()
    if set(map(str.count, lines, repeat(","))) != {width - 1}:
        return None  # a blank line, or a row of another width
    if max(map(len, lines)) > _FIELD_LIMIT:
        return None  # the csv reader refuses a cell that long: let it say so
    cells = ",".join(lines).split(",")  # row after row; the \r of a \r\n goes with strip()
    return [cells[i::width] for i in kept]


def _quoted_columns(piece: str, width: int, kept: list[int]) -> list[Sequence[str]] | None:
    """Like :func:`_plain_columns`, by the csv reader: ``None`` when a row goes over a line,
    has other than ``width`` cells, or is not CSV."""
    reader = csv.reader(_slice_lines(piece), strict=True)
    try:
        rows = list(reader)
    except csv.Error:
        return None
    if reader.line_num != len(rows) or set(map(len, rows)) != {width}:
        return None
    return [list(map(itemgetter(i), rows)) for i in kept]


def _parse_rows(text: str, file: str, only: frozenset[str] | None = None) -> Table:
    """The table of any file, read row by row: the reference for :func:`_parse_regular`, and the
    one place a fault is found and worded."""
    reader = csv.reader(_lines(text), strict=True)
    head: _Header | None = None
    pick = _picker([])
    rows: list[Sequence[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for record in reader:
            line = start
            start = reader.line_num + 1
            if not "".join(record).strip():
                continue
            if head is None:
                head = _header(record, line, file, only)
                pick = _picker([i for i, _ in head.keep])
                continue
            if len(record) > head.width and any(c.strip() for c in record[head.width :]):
                raise SourceError(
                    f"row has {len(record)} cells but the header names {head.width} columns",
                    file=file,
                    line=line,
                )
            if len(record) < head.named:
                raise SourceError(
                    f"row has {len(record)} cells but the header names {head.named} columns; the "
                    "file is cut off or a cell is missing (empty cells still need their commas)",
                    file=file,
                    line=line,
                )
            # every kept column is named, so before `named`: the row has its cell
            rows.append(tuple(map(sys.intern, map(str.strip, pick(record)))))
            lines.append(line)
    except csv.Error as exc:
        if "end of data" in str(exc):
            raise SourceError(
                "the file ends inside a quoted cell (a quote is missing, or the file is cut off); "
                "check the quotes from this line on, or export the file again",
                file=file,
                line=start,
            ) from None
        raise SourceError(
            f"unreadable CSV ({exc}); a quoted cell must end with a quote followed by a comma or "
            "the end of the line",
            file=file,
            line=reader.line_num,
        ) from None
    if head is None:
        raise SourceError("the file is empty: it needs at least a header row", file=file, line=1)
    by_column = list(zip(*rows, strict=True)) if rows else [() for _ in head.keep]
    columns = {key: cells for (_, key), cells in zip(head.keep, by_column, strict=True)}
    return Table(file, head.record, columns, lines, head.line, head.unread)


def _picker(indexes: list[int]) -> Callable[[list[str]], Sequence[str]]:
    """The cells at ``indexes`` of a record, as a sequence (``itemgetter`` of one index gives the
    cell itself)."""
    if len(indexes) == 1:
        only = indexes[0]
        return lambda record: (record[only],)
    if not indexes:
        return lambda record: ()
    return itemgetter(*indexes)
