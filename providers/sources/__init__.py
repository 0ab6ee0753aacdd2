"""School-data sources: read a Realsmart export, a OneRoster CSV set or an SDS CSV set into the
school model (:mod:`reconciler.school`).

    read_source("realsmart", Path("export.json"), options=SourceOptions(ref_field="upn"))
    read_source("oneroster", Path("oneroster.zip"), options=SourceOptions(academic_year="2026-27"))
    read_source("sds", Path("sds-csv/"), options=SourceOptions(upn_domain="school.example"))

Every reader:

* Must return a whole, consistent :class:`SchoolData`, its tuples sorted by id (same input,
  same value), or raise :class:`reconciler.errors.SourceError` naming file, line and column
  (for JSON, the JSON path). A missing or empty source is an error, never an empty school.
* Must never read a password into the model, a message or a log line.
* A person with no usable user reference is an error naming the row, unless
  ``SourceOptions.skip_people_without_ref`` is set: then they are skipped with a warning and
  left out of every group.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.errors import SourceError
from reconciler.school import SchoolData

from .common import REF_FIELDS, SourceOptions
from .oneroster import read_oneroster
from .realsmart import EXAMPLE_EXPORT, example_export_path, read_realsmart
from .sds import read_sds

__all__ = [
    "EXAMPLE_EXPORT",
    "REF_FIELDS",
    "SOURCE_KINDS",
    "SourceOptions",
    "example_export_path",
    "read_oneroster",
    "read_realsmart",
    "read_sds",
    "read_source",
]

SOURCE_KINDS = ("realsmart", "oneroster", "sds")

_READERS: dict[str, Callable[[Path, SourceOptions], SchoolData]] = {
    "realsmart": read_realsmart,
    "oneroster": read_oneroster,
    "sds": read_sds,
}


def read_source(kind: str, path: Path, *, options: SourceOptions | None = None) -> SchoolData:
    """Read the source ``path`` of kind ``kind`` (one of :data:`SOURCE_KINDS`).

    Must raise :class:`SourceError` for an unknown kind or ``ref_field``, and whatever the
    reader raises for bad data.
    """
    reader = _READERS.get(kind)
    if reader is None:
        raise SourceError(
            f"unknown source kind {kind!r}; use one of {', '.join(SOURCE_KINDS)}", file=str(path)
        )
    options = options or SourceOptions()
    if options.ref_field not in REF_FIELDS:
        raise SourceError(
            f"unknown ref_field {options.ref_field!r}; use one of {', '.join(REF_FIELDS)}", file=str(path)
        )
    with gc_paused():
        return reader(Path(path), options)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a source is read, and restore it after.

    A trust's read makes a million small objects that all live on (cells, rows, people, classes);
    each full collection walks every one of them again: a tenth of the read (0.2 s of 1.7 on the
    trust benchmark). Reading makes no reference cycles worth collecting early; anything it
    leaves is collected by the next collection after it. ``render`` holds it over the whole render
    (read, generate, validate) for the same reason; a pause inside a pause leaves it paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
