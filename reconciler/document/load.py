"""Load and validate a desired-state document.

    read_json_file(path)      -> Any            file problems become one-line InputErrors
    validate_document(data)   -> list[Finding]  schema, then semantics; [] when valid
    load_desired(path)        -> DesiredState   raises InputError / DocumentError

Findings name a JSON path (``groups[3].mailNickname``) and say what to do. Schema errors from
:mod:`jsonschema` are reworded in plain English; the semantic checks (:mod:`reconciler.document.checks`)
cover what a schema cannot: unique keys and mail aliases, references that resolve, a Team's group
with an owner, Graph naming rules, people listed twice, user references of the right form.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from reconciler.document import rules
from reconciler.document.checks import Path as JsonPath
from reconciler.document.checks import format_path, semantic_findings, sort_findings
from reconciler.document.parse import parse_desired
from reconciler.errors import DocumentError, Finding, InputError
from reconciler.model import DesiredState, UserMatch
from reconciler.schema_check import Check, compile_check
from reconciler.schemas import inline_refs, load_schema

__all__ = [
    "JSON_MAX_DEPTH",
    "SCHEMA_NAME",
    "json_value_problem",
    "load_desired",
    "parse_json_text",
    "read_json_file",
    "validate_document",
]

log = logging.getLogger(__name__)

SCHEMA_NAME = "desired-state"


# --------------------------------------------------------------------------------------- files


class _DuplicateProperty(ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise _DuplicateProperty(name)
        seen[name] = value
    return seen


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: documents we read are at most ~6 levels deep; deeper is a hostile or broken file
JSON_MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_value_problem(data: Any) -> str | None:
    """Why a parsed JSON value cannot be used, or ``None``: nested deeper than
    :data:`JSON_MAX_DEPTH`, or a string holding a lone UTF-16 surrogate (``"\\ud800"``: not a
    character; it cannot be written to Entra, a file or a terminal). Names the JSON path.
    Iterative, so any depth is safe."""
    if _looks_fine(data):
        return None
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > JSON_MAX_DEPTH:
            return f"is nested more than {JSON_MAX_DEPTH} levels deep (at {format_path(path[:8])}...)"
        if isinstance(value, str):
            if _SURROGATE.search(value):
                where = format_path(path) or "the document"
                return f"{where}: the text holds a lone surrogate (an invalid \\u escape); fix the text"
        elif isinstance(value, dict):
            for k, v in value.items():
                if _SURROGATE.search(k):
                    where = format_path(path) or "the document"
                    return f"{where}: a property name holds a lone surrogate (an invalid \\u escape)"
                stack.append((v, (*path, k)))
        elif isinstance(value, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(value))
    return None


def _looks_fine(data: Any) -> bool:
    """:func:`json_value_problem`'s question without building paths (the common case): ``True``
    when nothing is nested too deeply and no string or property name holds a lone surrogate."""
    search = _SURROGATE.search
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        items: Iterable[Any]
        if depth >= JSON_MAX_DEPTH and value:  # its items would be too deep: the exact walk says
            return False
        if isinstance(value, dict):
            if any(map(search, value)):
                return False
            items = value.values()
        elif isinstance(value, list):
            items = value
        else:
            return not (isinstance(value, str) and search(value))
        for v in items:
            if isinstance(v, str):
                if search(v):
                    return False
            elif isinstance(v, (dict, list)):
                stack.append((v, depth + 1))
    return True


def parse_json_text(text: str, name: str) -> Any:
    """Parse JSON text, refusing what :func:`read_json_file` refuses (one-line :class:`InputError`)."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise InputError(f"{name}: invalid JSON at {where}: {exc.msg}") from None
    except _DuplicateProperty as exc:
        raise InputError(
            f"{name}: the property {json.dumps(exc.name)} appears twice in one object; "
            "JSON keeps only the last, so remove one"
        ) from None
    except RecursionError:
        raise InputError(
            f"{name}: the JSON is nested too deeply to read (at most {JSON_MAX_DEPTH} levels)"
        ) from None
    except ValueError as exc:
        if "digits" in str(exc):
            raise InputError(f"{name}: a number has too many digits (at most 4300); fix the value") from None
        raise InputError(f"{name}: {exc}; use a number or null") from None
    problem = json_value_problem(data)
    if problem is not None:
        raise InputError(f"{name}: {problem}")
    return data


def read_json_file(path: str | Path) -> Any:
    """Read and parse the JSON file at ``path``.

    Must raise :class:`InputError` with one line naming the file and the fix for: a missing file,
    a directory, an unreadable file, a file that is not UTF-8, an empty file, invalid JSON (with
    line and column), ``NaN``/``Infinity``, a number of more than 4300 digits, nesting deeper
    than :data:`JSON_MAX_DEPTH`, a lone surrogate, and a property given twice in one object
    (JSON would silently keep only the last). Accepts a UTF-8 byte-order mark.
    """
    p = Path(path)
    name = str(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory; give the path of a JSON file") from None
    except PermissionError:
        raise InputError(f"{name}: cannot read the file (permission denied); check its permissions") from None
    except OSError as exc:
        if p.is_dir():
            raise InputError(f"{name}: is a directory; give the path of a JSON file") from None
        raise InputError(f"{name}: cannot read the file ({exc.strerror or type(exc).__name__})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name}: is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8 JSON"
        ) from None
    if text.strip() == "":
        raise InputError(f"{name}: the file is empty; expected a JSON document")
    return parse_json_text(text, name)


# ------------------------------------------------------------------------------------- schema

_FORMATS = jsonschema.FormatChecker(formats=())


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value.upper() or len(value) < 20:
        return False
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    return parsed.tzinfo is not None


_FORMATS.checks("date-time", raises=ValueError)(_is_date_time)


@lru_cache(maxsize=1)
def _validator() -> Any:
    schema = load_schema(SCHEMA_NAME)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(inline_refs(schema), format_checker=_FORMATS)


@lru_cache(maxsize=1)
def _quick_check() -> Check:
    """Valid or not, fast (:mod:`reconciler.schema_check`); ``jsonschema`` words the findings."""
    check = compile_check(inline_refs(load_schema(SCHEMA_NAME)), _FORMATS)
    return check if check is not None else (lambda data: not any(_validator().iter_errors(data)))


def _without_member_lists(data: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``data`` whose ``members`` lists made only of strings are emptied.

    Those lists can hold a hundred thousand references; every schema rule on their items
    (a string of 1 to 256 characters) is also checked, with better wording and the same path,
    by :func:`rules.user_ref_problem` in the semantic pass. A list holding anything but strings
    keeps the full schema check.
    """
    out = dict(data)
    for name in ("administrativeUnits", "groups"):
        items = data.get(name)
        if isinstance(items, list):
            out[name] = [_slim(item) for item in items]
    return out


def _slim(item: Any) -> Any:
    members = item.get("members") if isinstance(item, Mapping) else None
    if isinstance(members, list) and all(isinstance(m, str) for m in members):
        return {**item, "members": []}
    return item


_TYPE_NAMES = {
    "object": "an object ({...})",
    "array": "a list ([...])",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "null"


def _first_sentence(text: str) -> str:
    head = re.split(r"\.\s+(?=[A-Z])", text)[0].rstrip(".")
    return head[0].lower() + head[1:] if head else head


def _suggest(word: str, options: Sequence[str]) -> str:
    folded = {o.casefold(): o for o in options}
    if word.casefold() in folded:
        return f" (did you mean {json.dumps(folded[word.casefold()])}? case matters)"
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {json.dumps(close[0])}?)" if close else ""


def _field_kind(path: JsonPath) -> str:
    """What kind of value sits at ``path``: selects the plain-English wording of a schema error."""
    last = path[-1] if path else ""
    parent = path[-2] if len(path) >= 2 else ""
    if isinstance(last, int):
        if parent in ("members", "owners"):
            return "userRef"
        if parent == "administrativeUnits" and len(path) == 4 and path[0] == "groups":
            return "key"
        return ""
    if last in ("key", "group") and len(path) == 3:
        return "key"
    if last in ("mailNickname", "displayName", "description", "academicYear", "generatedAt"):
        return last
    return ""


def _reword(error: Any, user_match: UserMatch) -> list[tuple[JsonPath, str]]:
    """Plain-English findings for one :class:`jsonschema.ValidationError`."""
    path: JsonPath = tuple(error.absolute_path)
    kind = _field_kind(path)
    validator, value, instance = error.validator, error.validator_value, error.instance
    if validator == "required":
        props = error.schema.get("properties", {})
        return [
            (
                (*path, name),
                f"is missing; add {_first_sentence(props.get(name, {}).get('description', name))}",
            )
            for name in value
            if isinstance(instance, dict) and name not in instance
        ]
    if validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        return [
            ((*path, name), f"is not a field here{_suggest(name, allowed)}; allowed: {', '.join(allowed)}")
            for name in instance
            if name not in allowed
        ]
    if validator == "type":
        return [(path, f"must be {_TYPE_NAMES.get(value, value)}, not {_TYPE_NAMES[_json_type(instance)]}")]
    if validator == "const":
        return [(path, f"must be {json.dumps(value)}, not {json.dumps(instance)}")]
    if validator == "enum":
        options = [str(o) for o in value]
        shown = json.dumps(instance) if not isinstance(instance, str) else rules.quote(instance)
        hint = _suggest(instance, options) if isinstance(instance, str) else ""
        return [(path, f"{shown} is not allowed{hint}; use one of: {', '.join(options)}")]
    if isinstance(instance, str):
        problem: str | None = None
        if kind == "mailNickname":
            problem = rules.mail_nickname_problem(instance)
        elif kind == "displayName":
            problem = rules.display_name_problem(instance)
        elif kind == "key":
            problem = rules.key_problem(instance)
        elif kind == "userRef":
            problem = rules.user_ref_problem(instance, user_match)
        elif kind == "description" and instance == "":
            problem = "is empty; leave the field out instead"
        elif kind == "academicYear":
            problem = f"{rules.quote(instance)} is not an academic year; write it YYYY-YY, such as 2026-27"
        elif kind == "generatedAt":
            problem = (
                f"{rules.quote(instance)} is not a date-time with a time zone, such as 2026-09-01T04:00:00Z"
            )
        if problem is not None:
            return [(path, problem)]
        if validator == "maxLength":
            return [(path, f"{rules.quote(instance)} is {len(instance)} characters long; at most {value}")]
        if validator == "minLength":
            return [(path, "is empty; give a value or leave the field out")]
    if validator == "maxItems" and isinstance(instance, list):
        what = "owners" if path and path[-1] == "owners" else "items"
        return [(path, f"lists {len(instance)} {what}; Entra allows at most {value}, so remove some")]
    return [(path, error.message)]


def _schema_findings(data: Any) -> list[tuple[JsonPath, str]]:
    raw = data.get("userMatch") if isinstance(data, Mapping) else None
    user_match: UserMatch = raw if raw in ("mail", "employeeId") else "userPrincipalName"
    found: list[tuple[JsonPath, str]] = []
    checked = _without_member_lists(data) if isinstance(data, Mapping) else data
    if _quick_check()(checked):
        return found
    for error in _validator().iter_errors(checked):
        found.extend(_reword(error, user_match))
    return found


# ----------------------------------------------------------------------------------- validate


def _description_findings(data: Mapping[str, Any]) -> list[tuple[JsonPath, str]]:
    """Descriptions are written to Entra and shown on terminals: no control characters (line
    breaks and tabs allowed) and no bidirectional controls."""
    found: list[tuple[JsonPath, str]] = []
    for name in ("administrativeUnits", "groups"):
        items = data.get(name)
        for i, item in enumerate(items if isinstance(items, list) else []):
            value = item.get("description") if isinstance(item, Mapping) else None
            problem = rules.text_problem(value, newlines=True) if isinstance(value, str) else None
            if problem is not None:
                found.append(((name, i, "description"), problem))
    return found


def validate_document(data: Any) -> list[Finding]:
    """Every problem in the desired-state document ``data`` (parsed JSON); ``[]`` when it is valid.

    Must: check the schema and the semantics (unique keys per collection and unique mailNickname
    among groups, case-insensitively; team -> group and group -> administrative unit references
    resolve; one Team per group, made from a Microsoft 365 group with at least one owner; legal
    keys, mailNicknames and displayNames; no person twice in one list; user references of the
    form ``userMatch`` asks for). Must list every problem once, sorted by path, each naming its
    JSON path. Must-not raise on any JSON value.
    """
    if not isinstance(data, Mapping):
        return [
            Finding(
                "",
                f"the document must be a JSON object ({{...}}), not {_TYPE_NAMES[_json_type(data)]}",
            )
        ]
    found = _schema_findings(data) + semantic_findings(data) + _description_findings(data)
    unique = list(dict.fromkeys(found))
    return [Finding(format_path(path), message) for path, message in sort_findings(unique)]


def load_desired(path: str | Path) -> DesiredState:
    """Read, validate and parse the desired-state document at ``path``.

    Raises :class:`InputError` (one line) when the file cannot be read as JSON or its top-level
    value is not an object, and :class:`DocumentError` with every finding when it is invalid.
    Nothing is ever built from an invalid document.
    """
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: the top-level value is {_TYPE_NAMES[_json_type(data)]}; "
            "a desired-state document is a JSON object ({...})"
        )
    findings = validate_document(data)
    if findings:
        raise DocumentError(str(path), findings)
    state = parse_desired(data)
    log.debug(
        "loaded %s: %d administrative units, %d groups, %d teams",
        path,
        len(state.administrative_units),
        len(state.groups),
        len(state.teams),
    )
    return state
