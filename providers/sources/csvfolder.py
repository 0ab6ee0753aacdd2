"""A school data export's CSV files, by name, from a directory or a ``.zip``.

File names are found in any case (``Users.csv``, ``USERS.CSV``); in a zip, at its root or in its
one top-level folder. A zip is refused, naming it, when it has more than :data:`ZIP_MAX_MEMBERS`
members, a member larger than :data:`ZIP_MAX_MEMBER_BYTES` or a total larger than
:data:`ZIP_MAX_TOTAL_BYTES` once decompressed (a zip bomb), counted as it is read, not from the
zip's own claims. Each file is parsed by :func:`.csvutil.parse_csv`.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Collection
from pathlib import Path, PurePosixPath

from reconciler.errors import SourceError

from .csvutil import Table, parse_csv

__all__ = ["ZIP_MAX_MEMBERS", "ZIP_MAX_MEMBER_BYTES", "ZIP_MAX_TOTAL_BYTES", "CsvFolder", "open_folder"]

#: a OneRoster or SDS zip has a dozen files; a thousand is not an export
ZIP_MAX_MEMBERS = 1000
#: one decompressed CSV: 1 GiB is far above the largest trust's enrolments file
ZIP_MAX_MEMBER_BYTES = 1 << 30
#: all decompressed CSVs together
ZIP_MAX_TOTAL_BYTES = 2 << 30


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

    def read(self, name: str, only: Collection[str] | None = None) -> Table:
        """Read one file (only the columns ``only`` names, when given). Must raise
        :class:`SourceError` if it is missing."""
        entry = self._files.get(name.casefold())
        if entry is None:
            raise SourceError(f"required file {name} is missing from {self.label}", file=self.display(name))
        display, content = entry
        data = content.read_bytes() if isinstance(content, Path) else content
        return parse_csv(data, display, only)


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
    label = str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > ZIP_MAX_MEMBERS:
                raise SourceError(
                    f"the zip has {len(infos)} members (at most {ZIP_MAX_MEMBERS}); it is not a CSV export",
                    file=label,
                )
            members = [
                PurePosixPath(i.filename)
                for i in infos
                if not i.is_dir()
                and i.filename.lower().endswith(".csv")
                and not i.filename.startswith("__MACOSX")
            ]
            chosen = [m for m in members if len(m.parts) == 1]
            if not chosen:
                tops = {m.parts[0] for m in members if len(m.parts) == 2}
                if len(tops) == 1:
                    chosen = [m for m in members if len(m.parts) == 2]
            budget = ZIP_MAX_TOTAL_BYTES
            out: list[tuple[str, str, bytes | Path]] = []
            for m in sorted(chosen):
                data = _read_member(zf, str(m), f"{path}!{m}", budget)
                budget -= len(data)
                out.append((m.name, f"{path}!{m}", data))
            return out
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        NotImplementedError,
        EOFError,
        OSError,
    ) as exc:
        raise SourceError(f"the zip cannot be read ({exc}); export it again", file=label) from None


def _read_member(zf: zipfile.ZipFile, name: str, display: str, budget: int) -> bytes:
    """A member's bytes, decompressed in chunks and refused past the limits (a zip's own size
    fields can lie)."""
    limit = min(ZIP_MAX_MEMBER_BYTES, budget)
    chunks: list[bytes] = []
    size = 0
    with zf.open(name) as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            if size > limit:
                what = (
                    f"{ZIP_MAX_MEMBER_BYTES >> 20} MiB for one file"
                    if limit == ZIP_MAX_MEMBER_BYTES
                    else f"{ZIP_MAX_TOTAL_BYTES >> 20} MiB for the whole zip"
                )
                raise SourceError(
                    f"decompresses to more than {what}; this is not a CSV export (or a zip bomb)",
                    file=display,
                )
            chunks.append(chunk)
    return b"".join(chunks)
