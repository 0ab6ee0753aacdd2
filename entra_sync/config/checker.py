"""Small typed readers for a parsed TOML table that collect every problem instead of stopping at
the first: used by :mod:`entra_sync.config.load`. Internal.

A value is echoed in a message only when the caller says it is safe (never in ``[credentials]``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from datetime import date, datetime, time
from difflib import get_close_matches
from pathlib import Path
from typing import Any, TypeVar

from reconciler.errors import Finding

__all__ = ["SECRET_KEY", "Checker", "toml_type"]

T = TypeVar("T")

#: A key that names a secret itself rather than a reference to one (``client_secret``, ``password``).
SECRET_KEY = re.compile(
    r"(secret|password|passwd|passphrase|token|private_?key|assertion|api_?key)"
    r"(?!.*(_env|_file|_path)$)",
    re.IGNORECASE,
)


def toml_type(value: object) -> str:
    """The TOML name of a parsed value's type, for messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, datetime | date | time):
        return "date/time"
    return type(value).__name__


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Checker:
    """Reads typed values out of TOML tables, recording a :class:`Finding` per problem."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.findings: list[Finding] = []

    def add(self, path: str, message: str) -> None:
        self.findings.append(Finding(path, message))

    # -- tables and keys -------------------------------------------------------------------------

    def table(self, parent: Mapping[str, Any], name: str, path: str) -> dict[str, Any] | None:
        """The sub-table ``name`` (None when absent or not a table, the latter recorded)."""
        value = parent.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add(path, f"expected a table ([{path}]), got {toml_type(value)}")
            return None
        return value

    def keys(
        self, table: Mapping[str, Any], section: str, known: Collection[str], elsewhere: Mapping[str, str]
    ) -> None:
        """Record secret-looking keys and unknown keys (with a did-you-mean suggestion, or the
        section a misplaced key belongs to). Must never echo the value of a secret-looking key."""
        for key in sorted(table):
            path = f"{section}.{key}" if section else key
            if key in known:
                continue
            if SECRET_KEY.search(key):
                self.add(
                    path,
                    "looks like a secret written into the configuration file, which is refused "
                    "(the value is not shown). Keep secrets out of this file: put the secret in an "
                    'environment variable and name it in [credentials] (client_secret_env = "ENTRA_SYNC_'
                    'CLIENT_SECRET"), or in a file only the service account can read (client_secret_file '
                    '= "/path/to/secret"), or better use a certificate, federated token or managed identity',
                )
                continue
            hint = ""
            prefixed = sorted(
                (k for k in known if k.startswith(key) or key.startswith(k)), key=lambda k: (len(k), k)
            )
            close = prefixed[:1] or get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            if key in elsewhere:
                hint = f"; it belongs in [{elsewhere[key]}]"
            elif close:
                hint = f"; did you mean {close[0]!r}?"
            where = f"[{section}]" if section else "the top level"
            self.add(path, f"unknown key in {where}{hint}")

    # -- scalars ---------------------------------------------------------------------------------

    def _typed(self, table: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...],
               expected: str) -> Any:  # fmt: skip
        if key not in table:
            return None
        value = table[key]
        ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _as_tuple(kind))
        if not ok:
            self.add(path, f"expected {expected}, got {toml_type(value)}")
            return None
        return value

    def string(
        self,
        table: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = False,
        choices: Collection[str] | None = None,
        echo: bool = True,
    ) -> str | None:
        value = self._typed(table, key, path, str, "a string")
        if value is None:
            if required and key not in table:
                self.add(path, "is required")
            return None
        if not value.strip():
            self.add(path, "must not be empty")
            return None
        if choices is not None and value not in choices:
            got = f"got {_show(value)}" if echo else "got something else"
            close = get_close_matches(value, list(choices), n=1) if echo else []
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.add(path, f"must be one of {', '.join(repr(c) for c in choices)}, {got}{hint}")
            return None
        return str(value)

    def boolean(self, table: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = self._typed(table, key, path, bool, "a boolean (true or false)")
        return default if value is None else bool(value)

    def integer(
        self, table: Mapping[str, Any], key: str, path: str, default: int, *, minimum: int = 0
    ) -> int:
        value = self._typed(table, key, path, int, "an integer")
        if value is None:
            return default
        if value < minimum:
            self.add(path, f"must be at least {minimum}, got {value}")
            return default
        return int(value)

    def fraction(self, table: Mapping[str, Any], key: str, path: str, default: float) -> float:
        value = self._typed(table, key, path, (int, float), "a number between 0 and 1")
        if value is None:
            return default
        if not 0.0 <= float(value) <= 1.0:
            self.add(path, f"must be between 0 and 1 (a fraction, 0.3 = 30%), got {value}")
            return default
        return float(value)

    def strings(
        self, table: Mapping[str, Any], key: str, path: str, *, choices: Collection[str] | None = None
    ) -> tuple[str, ...] | None:
        value = self._typed(table, key, path, list, "an array of strings")
        if value is None:
            return None
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.add(f"{path}[{i}]", f"expected a string, got {toml_type(item)}")
            elif choices is not None and item not in choices:
                self.add(
                    f"{path}[{i}]", f"must be one of {', '.join(repr(c) for c in choices)}, got {_show(item)}"
                )
            elif item in out:
                self.add(f"{path}[{i}]", f"{item!r} is listed twice")
            else:
                out.append(item)
        return tuple(out)

    def path(self, table: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> Path | None:
        """A file path; ``~`` is expanded and a relative path is resolved against the config file's
        directory. Must not touch the file system (the file may be created later)."""
        value = self.string(table, key, path, required=required)
        if value is None:
            return None
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            self.add(path, "contains a control character; a file path has none")
            return None
        p = Path(value).expanduser()
        return Path(os.path.normpath(p if p.is_absolute() else self.base_dir / p))


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
