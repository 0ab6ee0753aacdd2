"""``entra-sync validate PATH``: the CI check of a desired-state document.

Exit 0 with a one-line summary when the document is valid; exit 1 with every problem, one per
line (``groups[3].mailNickname: ...``), when it is not or the file cannot be read.
``--format json`` prints the same as one JSON object for machines.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from reconciler.document.checks import count_objects
from reconciler.document.load import read_json_file, validate_document
from reconciler.errors import Finding, InputError

__all__ = ["OutputFormat", "register", "validate"]


class OutputFormat(enum.StrEnum):
    text = "text"
    json = "json"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(
        [
            _plural(counts["administrativeUnits"], "administrative unit"),
            _plural(counts["groups"], "group"),
            _plural(counts["teams"], "team"),
            _plural(counts["people"], "person").replace("persons", "people"),
        ]
    )


def _check(path: Path) -> tuple[list[Finding], dict[str, int] | None]:
    """Findings for the file (a file problem is one finding with an empty path) and the counts."""
    try:
        data: Any = read_json_file(path)
    except InputError as exc:
        return [Finding("", str(exc))], None
    if not isinstance(data, dict):
        return [Finding("", f"{path}: {validate_document(data)[0].message}")], None
    return validate_document(data), count_objects(data)


def validate(
    path: Annotated[
        Path,
        typer.Argument(
            help="The desired-state JSON document to check, e.g. desired-state.json.",
            show_default=False,
            metavar="PATH",
        ),
    ],
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="text: one problem per line, for people. json: {valid, file, findings, counts}.",
            case_sensitive=False,
        ),
    ] = OutputFormat.text,
) -> None:
    """Check a desired-state document (see ``_HELP``)."""
    findings, counts = _check(path)
    valid = not findings
    if output is OutputFormat.json:
        payload = {
            "valid": valid,
            "file": str(path),
            "findings": [{"path": f.path, "message": f.message} for f in findings],
            "counts": counts,
        }
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    elif counts is None:
        typer.echo(f"error: {findings[0].message}", err=True)
    elif valid:
        typer.echo(f"OK {path}: {_summary(counts)}")
    else:
        for finding in findings:
            typer.echo(str(finding))
        typer.echo(f"{path}: {_plural(len(findings), 'problem')}; fix them and run validate again", err=True)
    if not valid:
        raise typer.Exit(1)


_HELP = (
    "Check a desired-state document against the schema and the semantic rules.\n\n"
    "Checks the JSON Schema (schemas/desired-state.schema.json) and what it cannot express: unique "
    "keys and mail aliases, references that resolve (team -> group, group -> administrative unit), "
    "a Team's group has an owner, Microsoft Graph naming rules, nobody listed twice, user references "
    "of the kind `userMatch` names. Never contacts Entra.\n\n"
    "Exit status: 0 when valid; 1 when the file cannot be read or the document is invalid, with "
    "every problem on its own line as `JSON.path: what is wrong; what to do`.\n\n"
    "Example: entra-sync validate desired-state.json --format json"
)


def register(app: typer.Typer) -> None:
    """Add ``validate`` to the app."""
    command = app.command(
        "validate", help=_HELP, short_help="Check a desired-state document (CI).", no_args_is_help=True
    )
    command(validate)
