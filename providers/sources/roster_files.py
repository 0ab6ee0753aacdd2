"""What a OneRoster set's files are: the modes its ``manifest.csv`` gives them, and the columns the
reader takes from each (:mod:`.oneroster`; an export has many more, which are not kept)."""

from __future__ import annotations

import logging

from .csvutil import Table

__all__ = ["COLUMNS", "REF_COLUMNS", "manifest_modes"]

log = logging.getLogger(__name__)

#: ``ref_field`` -> the users.csv column the user reference is taken from
REF_COLUMNS = {"default": "username", "username": "username", "upn": "username", "email": "email"}
#: the columns read from each file (every alias the reader looks up; the rest are not kept)
COLUMNS: dict[str, tuple[str, ...]] = {
    "orgs": ("sourcedId", "status", "name", "type", "parentSourcedId"),
    "academicSessions": ("sourcedId", "status", "type", "startDate", "endDate", "schoolYear"),
    "courses": ("sourcedId", "status", "title", "subjects", "subject"),
    "classes": (
        "sourcedId", "status", "title", "schoolSourcedId", "orgSourcedId", "classType", "classCode",
        "subjects", "grades", "grade", "courseSourcedId",
    ),
    "users": (
        "sourcedId", "status", "role", "orgSourcedIds", "orgSourcedId", "grades", "grade",
        "givenName", "familyName", *REF_COLUMNS.values(),
    ),
    "roles": ("sourcedId", "status", "userSourcedId", "role", "orgSourcedId", "grade", "grades"),
    "enrollments": ("sourcedId", "status", "classSourcedId", "userSourcedId", "role"),
}  # fmt: skip


def manifest_modes(table: Table) -> dict[str, str]:
    """``manifest.csv``'s ``file.<name>`` modes (``bulk`` or ``absent``). Must raise
    :class:`SourceError` (file, line) for another mode, and for ``delta``: the model is the whole
    school, so it needs a bulk export."""
    names = table.column(table.col("propertyName"))
    values = table.column(table.col("value"))
    props = {
        name.casefold(): (value, row) for row, (name, value) in enumerate(zip(names, values, strict=True))
    }
    modes: dict[str, str] = {}
    for prop, (value, row) in props.items():
        if not prop.startswith("file."):
            continue
        mode = value.casefold() or "absent"
        if mode not in ("bulk", "delta", "absent"):
            raise table.error(row, "value", f"{prop} is {value!r}; expected bulk, delta or absent")
        if mode == "delta":
            raise table.error(
                row, "value", f"{prop} is a delta file; export a bulk set (the whole school is needed)"
            )
        modes[prop[5:]] = mode
    log.debug("OneRoster manifest: version %s, files %s", props.get("oneroster.version", ("?",))[0], modes)
    return modes
