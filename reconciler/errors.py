"""The exception tree. The CLI turns any :class:`EntraSyncError` into one clear message and a
non-zero exit; a traceback is shown only with ``--debug``.

    EntraSyncError                 every error the tool reports on purpose
    ├── InputError                 bad input from the user: a file, a config, a source
    │   ├── DocumentError          an invalid desired-state or plan document (all findings)
    │   ├── ConfigError            a wrong configuration file or setting
    │   └── SourceError            bad school data (file, line, column)
    ├── SafetyError                a plan refused by a safety limit (counts, limit, override)
    ├── StalePlanError             a saved plan whose actual state has changed
    └── DirectoryError             the directory (Graph) failed; see providers.entra.errors

Messages never contain secrets: build them from names, paths, keys and ids only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "DirectoryError",
    "DocumentError",
    "EntraSyncError",
    "Finding",
    "InputError",
    "SafetyError",
    "SourceError",
    "StalePlanError",
    "findings_text",
]


class EntraSyncError(Exception):
    """Base of every error the tool reports on purpose. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class InputError(EntraSyncError):
    pass


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in a document: where (a JSON path like ``groups[3].mailNickname``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


#: findings shown in an error message; all of them stay on the exception (``findings``)
MAX_FINDINGS_SHOWN = 50


def findings_text(head: str, findings: Sequence[Finding], limit: int = MAX_FINDINGS_SHOWN) -> str:
    """``head`` and one indented line per finding, cut after ``limit`` with a count of the rest."""
    lines = [head, *(f"  {f}" for f in findings[:limit])]
    if len(findings) > limit:
        lines.append(f"  ... and {len(findings) - limit} more (fix these first; they often share a cause)")
    return "\n".join(lines)


class DocumentError(InputError):
    def __init__(self, file: str, findings: Sequence[Finding]) -> None:
        self.file = file
        self.findings = tuple(findings)
        head = f"{file}: {len(self.findings)} problem{'s' if len(self.findings) != 1 else ''}"
        super().__init__(findings_text(head, self.findings))


class ConfigError(InputError):
    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        where = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class SourceError(InputError):
    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, column: str | None = None
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        where = file or ""
        if line is not None:
            where += f", line {line}"
        if column:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}" if where else message)


class SafetyError(EntraSyncError):
    exit_code = 3

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("plan refused by safety limits:\n" + "\n".join(f"  - {r}" for r in self.reasons))


class StalePlanError(EntraSyncError):
    pass


class DirectoryError(EntraSyncError):
    pass
