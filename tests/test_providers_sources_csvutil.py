"""The shared CSV reader (providers/sources/csvutil.py): a table of columns with each row's line.

A regular file is read a slice of lines at a time (``_parse_regular``); anything else row by row
(``_parse_rows``). The property test holds the two to the same table on random files, and the
edge cases below (blank lines, quoted line breaks, BOM, a row of another width in a later slice)
check that the fast reader gives way to the row-by-row one with the same table or message.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.sources import csvutil
from providers.sources.csvutil import Table, parse_csv
from reconciler.errors import SourceError


def shape(t: Table) -> tuple[object, ...]:
    keys = [k for k in (csvutil.norm_header(h) for h in t.header) if k]
    return (t.header, t.header_line, list(t.lines), {k: list(t.column(k)) for k in keys})


def outcome(parse: object, text: str) -> tuple[object, ...]:
    try:
        return ("table", shape(parse(text, "x.csv")))  # type: ignore[operator]
    except SourceError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("end", ["\r", "\n", "\r\n"])
@pytest.mark.parametrize("header", ["id", "id,n"])
def test_csv_rows_end_at_any_line_end_in_any_slice(
    monkeypatch: pytest.MonkeyPatch, header: str, end: str
) -> None:
    """Old Mac files end lines with a lone CR: a slice holding one is not split at its LFs."""
    monkeypatch.setattr(csvutil, "SLICE_CHARS", 6)
    cells = ",".join(["x"] * header.count(","))
    text = end.join([header] + [f"r{i}{',' if cells else ''}{cells}" for i in range(5)]) + end
    t = parse_csv(text.encode(), "x.csv")
    assert list(t.column("id")) == [f"r{i}" for i in range(5)]
    assert list(t.lines) == [2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "text",
    [
        b"ID,Status,Date Last Modified,Role\ne1,active,2026-09-01,student\ne2,active,2026-09-01,teacher\n",
        b'ID,Status,Date Last Modified,Role\ne1,active,"2026-09-01\nlate",student\n\ne2,active,,teacher\n',
    ],
    ids=["regular", "row-by-row"],
)
def test_csv_keeps_only_the_columns_asked_for(text: bytes) -> None:
    t = parse_csv(text, "x.csv", only=("id", "role", "password"))
    assert list(t.column(t.col("Id"))) == ["e1", "e2"]
    assert list(t.column(t.col("role"))) == ["student", "teacher"]
    assert t.has("status") and t.col("status") == "status"  # still in the header: found, named
    with pytest.raises(LookupError, match=r"x\.csv: column 'status' was not read"):
        t.column(t.col("status"))  # a reader that forgot a column hears of it at once
    assert parse_csv(text, "x.csv").column("datelastmodified")[0].startswith("2026-09-01")


def test_csv_columns_share_repeated_cells_and_keep_no_password() -> None:
    # a trust's enrolments file has hundreds of thousands of rows: a cell value named on many
    # rows (status, dates, class and user ids) is held once, not once per row
    text = b"id,Status ,password,role\r\ne1, active ,secret,student\r\ne2,active,pw,student\r\n"
    t = parse_csv(text, "x.csv")
    status, role = t.column(t.col("status")), t.column(t.col("role"))
    assert list(status) == ["active", "active"] and len(t) == 2
    assert status[0] is status[1] and role[0] is role[1]
    assert t.has("password") and list(t.column("password")) == ["", ""]
    assert "secret" not in str([list(t.column(k)) for k in ("id", "status", "role")])
    assert list(t.column(None)) == ["", ""] and list(t.column(t.opt("missing"))) == ["", ""]
    assert list(t.lines) == [2, 3]


def test_csv_line_ends_cr_lf_crlf_and_line_numbers() -> None:
    t = parse_csv('id,name\rx,"two\r\nlines"\n\r\ny,b\u2028c\r'.encode(), "x.csv")
    assert list(t.lines) == [2, 5]
    assert list(t.column("id")) == ["x", "y"] and list(t.column("name")) == ["two\r\nlines", "b\u2028c"]


@pytest.mark.parametrize(
    ("text", "lines", "ids"),
    [
        ("\ufeffid,n\r\na,1\r\nb,2\r\n", [2, 3], ["a", "b"]),  # BOM
        ("id,n\na,1\n\n\nb,2\n\n\n", [2, 5], ["a", "b"]),  # blank lines inside and at the end
        ("\n\nid,n\na,1\n", [4], ["a"]),  # blank lines before the header
        ("id,n\na,1\n ,\nb,2", [2, 4], ["a", "b"]),  # a row of blank cells; no line end at the end
        ('id,n\na,"x\ny"\nb,2\n', [2, 4], ["a", "b"]),  # a quoted line break
        ("id,n,,\na,1\nb,2,,\n", [2, 3], ["a", "b"]),  # empty header cells: rows may stop short
        ("id,n\n", [], []),  # header only
        ("id,n", [], []),  # header only, no line end
    ],
)
def test_csv_irregular_files_read_as_row_by_row(text: str, lines: list[int], ids: list[str]) -> None:
    t = parse_csv(text.encode(), "x.csv")
    assert (list(t.lines), list(t.column("id"))) == (lines, ids)
    assert shape(t) == shape(csvutil._parse_rows(text.lstrip("\ufeff"), "x.csv"))


def test_csv_row_with_only_a_password_is_a_row_not_a_blank_line() -> None:
    t = parse_csv(b"id,password\na,x\n,secret\n", "x.csv")
    assert list(t.lines) == [2, 3] and list(t.column("id")) == ["a", ""]


@pytest.mark.parametrize(
    ("tail", "message", "line"),
    [
        ("e,5,6\n", "row has 3 cells but the header names 2 columns", 7),
        ("e\n", "row has 1 cells but the header names 2 columns", 7),
        ('e,"5\n', "the file ends inside a quoted cell", 7),
        ('e,"5"x\n', "unreadable CSV", 7),
    ],
)
def test_csv_fault_in_a_later_chunk_names_its_line(
    monkeypatch: pytest.MonkeyPatch, tail: str, message: str, line: int
) -> None:
    monkeypatch.setattr(csvutil, "SLICE_CHARS", 4)  # a line a slice: the fault is in a later one
    text = "id,n\na,1\nb,2\nc,3\nd,4\n\n" + tail
    with pytest.raises(SourceError) as err:
        parse_csv(text.encode(), "x.csv")
    assert message in str(err.value) and err.value.line == line and err.value.file == "x.csv"


def test_csv_duplicate_header_named_by_both_readers() -> None:
    for text in ("id,ID\na,b\n", "\nid,ID\na,b\n"):
        with pytest.raises(SourceError, match="header names this column twice") as err:
            parse_csv(text.encode(), "x.csv")
        assert err.value.line == text.index("id") + 1


cell = st.sampled_from(["a", "b", "", " a ", "a,b", '"q"', "x\ny", "x\r\ny", "x\ry", "é", "\u2028", " "])
plain = st.sampled_from(["a", "b", "", " a ", "a,b", '"q"', "é", "\u2028", "\x0b"])  # no line break
ending = st.sampled_from(["\r\n", "\n", "\r"])
names = st.sampled_from(["id", "name", "", "password", "Name", "role"])  # name and Name: one column


def quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n ') else value


@st.composite
def csv_text(draw: st.DrawFn) -> str:
    """Mostly regular files (a row a line, the header's width), some with one irregularity."""
    header = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    width = len(header)
    row = regular = st.lists(plain, min_size=width, max_size=width)
    if draw(st.booleans()):
        row = st.one_of(regular, regular, regular, st.lists(cell, max_size=5))
    rows = draw(st.lists(row, max_size=8))
    out = [",".join(quote(h) for h in header)] + [",".join(quote(c) for c in r) for r in rows]
    text = "".join(line + draw(ending) for line in out)
    if draw(st.booleans()):
        text += draw(st.sampled_from(["\n\n", "\r\n", 'a,"', 'a,"b"c', " \n"]))
    return text


@settings(max_examples=400, deadline=None)
@given(csv_text(), st.sampled_from([1, 5, 12, 1 << 16]))
def test_csv_sliced_reader_gives_the_row_by_row_table(text: str, size: int) -> None:
    old = csvutil.SLICE_CHARS
    csvutil.SLICE_CHARS = size
    try:
        fast = outcome(lambda t, f: csvutil._parse_regular(t, f) or csvutil._parse_rows(t, f), text)
    finally:
        csvutil.SLICE_CHARS = old
    assert fast == outcome(csvutil._parse_rows, text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", ",", '"', "\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "é"])
    ).map("".join),
    st.sampled_from([1, 2, 3, 7, 1 << 16]),
)
def test_csv_lines_end_only_at_cr_and_lf_whatever_the_slices(text: str, size: int) -> None:
    """A piece of the text at a time, split by ``str.splitlines`` where it holds no other line
    break: the lines ``io.StringIO(text, newline="")`` gives, each with its end."""
    import io

    old = csvutil.SLICE_CHARS
    csvutil.SLICE_CHARS = size
    try:
        lines = list(csvutil._lines(text))
        cut = list(csvutil._lines(text, len(text) // 2))
    finally:
        csvutil.SLICE_CHARS = old
    assert lines == list(io.StringIO(text, newline=""))
    assert cut == list(io.StringIO(text[: len(text) // 2], newline=""))


def test_read_source_pauses_the_cycle_collector_and_restores_it() -> None:
    import gc

    from providers.sources import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a reader's error")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_csv_cell_longer_than_the_csv_reader_takes_is_refused_with_its_line() -> None:
    text = "id,n\na,1\nb," + "9" * (csvutil._FIELD_LIMIT + 1) + "\n"
    with pytest.raises(SourceError, match="unreadable CSV") as err:
        parse_csv(text.encode(), "x.csv")
    assert err.value.line == 3
