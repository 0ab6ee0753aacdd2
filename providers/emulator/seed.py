"""Read users to seed a tenant: a CSV with a ``userPrincipalName`` column (optional
``displayName``, ``mail``, ``employeeId``) or a JSON list of objects with those fields.

Errors are :class:`reconciler.errors.SourceError` with file, line and what to do.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from providers.emulator.tenant import Tenant
from reconciler.errors import SourceError

__all__ = ["SeedUser", "read_users", "seed_users"]

FIELDS = ("userPrincipalName", "displayName", "mail", "employeeId")


@dataclass(frozen=True)
class SeedUser:
    user_principal_name: str
    display_name: str | None = None
    mail: str | None = None
    employee_id: str | None = None


def _check_upn(value: object, file: str, line: int | None) -> str:
    if not isinstance(value, str) or "@" not in value.strip() or " " in value.strip():
        raise SourceError(
            f"userPrincipalName {value!r} is not of the form name@domain; fix or remove that row.",
            file=file,
            line=line,
            column="userPrincipalName",
        )
    return value.strip()


def _opt(value: object, file: str, line: int | None, column: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SourceError(
            f"{column} must be text, not {type(value).__name__}.", file=file, line=line, column=column
        )
    return value.strip()


def read_users(path: str | Path) -> list[SeedUser]:
    """The users in ``path`` (``.json`` = JSON list, anything else = CSV), in file order."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SourceError("file not found; give a CSV or JSON file of users.", file=file) from None
    except UnicodeDecodeError:
        raise SourceError("not UTF-8 text; save the file as UTF-8 CSV or JSON.", file=file) from None
    if file.lower().endswith(".json") or text.lstrip().startswith("["):
        return _read_json(text, file)
    return _read_csv(text, file)


def _read_json(text: str, file: str) -> list[SeedUser]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"not valid JSON: {exc.msg} (column {exc.colno}); fix the syntax.", file=file, line=exc.lineno
        ) from None
    if not isinstance(data, list):
        raise SourceError(
            "expected a JSON list of objects with userPrincipalName (and optional displayName, "
            "mail, employeeId).",
            file=file,
        )
    users = []
    for i, item in enumerate(data):
        where = f"{file} [item {i}]"
        if not isinstance(item, dict):
            raise SourceError("each item must be an object with userPrincipalName.", file=where)
        unknown = sorted(set(item) - set(FIELDS))
        if unknown:
            raise SourceError(
                f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(FIELDS)}.", file=where
            )
        users.append(
            SeedUser(
                _check_upn(item.get("userPrincipalName"), where, None),
                _opt(item.get("displayName"), where, None, "displayName"),
                _opt(item.get("mail"), where, None, "mail"),
                _opt(item.get("employeeId"), where, None, "employeeId"),
            )
        )
    return users


def _read_csv(text: str, file: str) -> list[SeedUser]:
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","  # Excel in many locales writes ';'
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    header = reader.fieldnames or []
    if "userPrincipalName" not in header:
        raise SourceError(
            f"no 'userPrincipalName' column in the header ({', '.join(header) or 'empty'}); "
            "add one (optional columns: displayName, mail, employeeId).",
            file=file,
            line=1,
        )
    users = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise SourceError(
                "more values than header columns; quote values that contain commas.", file=file, line=line
            )
        users.append(
            SeedUser(
                _check_upn(row.get("userPrincipalName"), file, line),
                _opt(row.get("displayName"), file, line, "displayName"),
                _opt(row.get("mail"), file, line, "mail"),
                _opt(row.get("employeeId"), file, line, "employeeId"),
            )
        )
    return users


def seed_users(tenant: Tenant, users: list[SeedUser]) -> tuple[int, int]:
    """Add users not already present (by UPN, case-insensitive); returns ``(added, skipped)``."""
    added = skipped = 0
    index = tenant.user_index["userPrincipalName"]
    for u in users:
        if u.user_principal_name.lower() in index:
            skipped += 1
            continue
        tenant.add_user(u.user_principal_name, u.display_name, u.mail, u.employee_id)
        added += 1
    return added, skipped
