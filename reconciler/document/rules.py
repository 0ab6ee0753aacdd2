"""Microsoft Graph naming rules, shared by the validator (:mod:`reconciler.document.load`) and the generator.

Each ``*_problem`` function returns ``None`` for a legal value, or one human sentence that says
what is wrong and what to do (for example ``"7A Ma1" contains a space; use letters, digits, - or
_``). The sentence does not name the field: the caller puts the JSON path in front of it.

Sources: ``docs/graph-facts.md`` §1 (group create). A mailNickname is at most 64 characters of
ASCII, excluding ``@ ( ) \\ [ ] " ; : < > ,`` and space; older pages also forbid ``.``, so we do too.
A displayName is at most 256 characters. Entra allows an employeeId of at most 16 characters.
"""

from __future__ import annotations

import json
import re
import unicodedata

from reconciler.model import UserMatch

__all__ = [
    "BIDI_CONTROLS",
    "DISPLAY_NAME_MAX",
    "EMPLOYEE_ID_MAX",
    "KEY_MAX",
    "MAIL_NICKNAME_FORBIDDEN",
    "MAIL_NICKNAME_MAX",
    "USER_REF_MAX",
    "clean_text",
    "display_name_problem",
    "holds_bidi",
    "key_problem",
    "mail_nickname_problem",
    "quote",
    "text_problem",
    "user_ref_problem",
]

MAIL_NICKNAME_MAX = 64
DISPLAY_NAME_MAX = 256
#: an employeeId in Entra is at most 16 characters
EMPLOYEE_ID_MAX = 16
#: a UPN or mail address: Entra limits a UPN to 113 characters, mail to 256; we use the larger
USER_REF_MAX = 256
#: keys are stamped on objects in a directory extension (at most 256 characters); leave headroom
KEY_MAX = 200
#: characters Graph refuses in a mailNickname (graph-facts.md §1), plus "." as advised there
MAIL_NICKNAME_FORBIDDEN = frozenset('@()\\[]";:<>,. ')

#: bidirectional-control characters: they reorder what a person sees (a name shown reversed, a
#: file name that hides its extension) and have no place in a name. U+202A-U+202E (embeddings,
#: overrides), U+2066-U+2069 (isolates), U+200E/U+200F (marks), U+061C (Arabic letter mark)
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_BIDI_TABLE = dict.fromkeys(map(ord, BIDI_CONTROLS))
_BIDI_CLASS = "".join(sorted(BIDI_CONTROLS))  # for a regular expression's [...]
_BIDI_SEARCH = re.compile(f"[{_BIDI_CLASS}]").search

_NICKNAME_FIX = "use letters, digits, - or _"
_QUOTE_MAX = 70


def quote(value: str) -> str:
    """``value`` as a JSON string for messages, shortened with an ellipsis past 70 characters."""
    shown = value if len(value) <= _QUOTE_MAX else value[: _QUOTE_MAX - 1] + "…"
    return json.dumps(shown, ensure_ascii=False)


def clean_text(value: str) -> str:
    """``value`` without bidirectional-control characters (:data:`BIDI_CONTROLS`).

    Used where school data enters the model (the source readers): a right-to-left override in a
    class name must not reach a display name in Entra or a terminal. Documents we are given
    (desired states, saved plans) are not cleaned but refused: see :func:`text_problem`.
    """
    return value.translate(_BIDI_TABLE) if _BIDI_SEARCH(value) else value


def holds_bidi(value: str) -> bool:
    """Whether ``value`` holds a bidirectional control (:data:`BIDI_CONTROLS`): one search."""
    return _BIDI_SEARCH(value) is not None


#: the control characters (Unicode category Cc is exactly these), and the same without tab, LF, CR
_CONTROLS = "\x00-\x1f\x7f-\x9f"
_CONTROLS_BUT_LINE_BREAKS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_ODD_TEXT = re.compile(f"[{_CONTROLS}{_BIDI_CLASS}]").search
_ODD_TEXT_LINES = re.compile(f"[{_CONTROLS_BUT_LINE_BREAKS}{_BIDI_CLASS}]").search
#: a mailNickname in one step: 1 to 64 printable ASCII characters, none forbidden
_PLAIN_NICKNAME = re.compile(
    "[" + "".join(re.escape(chr(c)) for c in range(33, 127) if chr(c) not in MAIL_NICKNAME_FORBIDDEN) + "]"
    f"{{1,{MAIL_NICKNAME_MAX}}}"
).fullmatch


def text_problem(value: str, *, newlines: bool = False) -> str | None:
    """Why ``value`` cannot be shown or sent as text, or ``None``: a control character (tab and
    line breaks allowed only when ``newlines``) or a bidirectional control. Any field, any length."""
    if not (_ODD_TEXT_LINES if newlines else _ODD_TEXT)(value):
        return None  # the common case, in one search
    for ch in value:
        if ch in BIDI_CONTROLS:
            return f"{quote(value)} contains the bidirectional control U+{ord(ch):04X}; remove it"
        if unicodedata.category(ch) == "Cc" and not (newlines and ch in "\t\r\n"):
            return f"{quote(value)} contains {_describe_char(ch)}; remove it"
    return None


def _describe_char(ch: str) -> str:
    if ch == " ":
        return "a space"
    if ch.isspace() or unicodedata.category(ch).startswith("C"):
        return f"the control character U+{ord(ch):04X}"
    return json.dumps(ch, ensure_ascii=False)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def mail_nickname_problem(value: str) -> str | None:
    """Why ``value`` is not a legal mailNickname, or ``None`` when it is.

    Must reject: empty, longer than :data:`MAIL_NICKNAME_MAX`, non-ASCII, control characters and
    :data:`MAIL_NICKNAME_FORBIDDEN`. Every problem is named in the one sentence.
    """
    if _PLAIN_NICKNAME(value):
        return None
    if value == "":
        return f"is empty; {_NICKNAME_FIX} (at most {MAIL_NICKNAME_MAX} characters)"
    bad: list[str] = []
    non_ascii: list[str] = []
    for ch in value:
        if ord(ch) > 127:
            if ch not in non_ascii:
                non_ascii.append(ch)
        elif ch in MAIL_NICKNAME_FORBIDDEN or ord(ch) < 33 or ord(ch) == 127:
            desc = _describe_char(ch)
            if desc not in bad:
                bad.append(desc)
    bad.extend(f"{json.dumps(c, ensure_ascii=False)} (not ASCII)" for c in non_ascii[:5])
    parts: list[str] = []
    if bad:
        parts.append(f"contains {_join(bad)}")
    if len(value) > MAIL_NICKNAME_MAX:
        parts.append(f"is {len(value)} characters long (at most {MAIL_NICKNAME_MAX})")
    if not parts:
        return None
    fix = _NICKNAME_FIX if bad else "shorten it"
    return f"{quote(value)} {_join(parts)}; {fix}"


def display_name_problem(value: str) -> str | None:
    """Why ``value`` is not a good displayName, or ``None`` when it is.

    Must reject: empty or blank, longer than :data:`DISPLAY_NAME_MAX`, control characters,
    bidirectional controls (:data:`BIDI_CONTROLS`), and
    leading or trailing whitespace (Entra would store a different string, and the object would
    look changed on every run).
    """
    if len(value) <= DISPLAY_NAME_MAX and not _ODD_TEXT(value) and value.strip() == value != "":
        return None  # the common case, in one search
    if value.strip() == "":
        return "is empty; give the object a name people will recognise"
    controls = [c for c in value if unicodedata.category(c) == "Cc"]
    if controls:
        return f"{quote(value)} contains {_describe_char(controls[0])}; remove it"
    bidi = [c for c in value if c in BIDI_CONTROLS]
    if bidi:
        return f"{quote(value)} contains the bidirectional control U+{ord(bidi[0]):04X}; remove it"
    if value != value.strip():
        return f"{quote(value)} starts or ends with a space; remove it"
    if len(value) > DISPLAY_NAME_MAX:
        return (
            f"{quote(value)} is {len(value)} characters long; a displayName may have at most "
            f"{DISPLAY_NAME_MAX}, so shorten it"
        )
    return None


#: the common case in one step: printable ASCII without spaces, short enough
_PLAIN_KEY = re.compile(f"[!-~]{{1,{KEY_MAX}}}").fullmatch


def key_problem(value: str) -> str | None:
    """Why ``value`` is not a legal object key, or ``None`` when it is.

    A key is 1 to :data:`KEY_MAX` printable characters with no whitespace, such as
    ``class:SCH1:2026-27:7A-Ma1``.
    """
    if _PLAIN_KEY(value):
        return None
    if value == "":
        return "is empty; a key is a stable id from school data such as class:SCH1:2026-27:7A-Ma1"
    odd = [c for c in value if c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    if odd:
        return f"{quote(value)} contains {_describe_char(odd[0])}; a key has no spaces or control characters"
    if len(value) > KEY_MAX:
        return f"{quote(value)} is {len(value)} characters long; a key may have at most {KEY_MAX}"
    return None


#: the common, well-formed case, checked in one step (documents can hold 100k references)
_PLAIN_ADDRESS = re.compile(r"[^\s@.][^\s@]*@[^\s@.]+(?:\.[^\s@.]+)+")


def _address_problem(ref: str, what: str) -> str | None:
    if len(ref) <= USER_REF_MAX and _PLAIN_ADDRESS.fullmatch(ref):
        return None
    if any(c.isspace() for c in ref):
        return f"{quote(ref)} contains a space; a {what} has none"
    if ref.count("@") != 1:
        found = "no @" if "@" not in ref else f"{ref.count('@')} @ signs"
        return f"{quote(ref)} has {found}; a {what} looks like name@school.example"
    local, domain = ref.split("@")
    if not local:
        return f"{quote(ref)} has nothing before the @; a {what} looks like name@school.example"
    labels = domain.split(".")
    if len(labels) < 2 or any(not label for label in labels):
        return f"{quote(ref)} has no valid domain after the @ (such as school.example)"
    if len(ref) > USER_REF_MAX:
        return f"{quote(ref)} is {len(ref)} characters long; a {what} has at most {USER_REF_MAX}"
    return None


def user_ref_problem(ref: str, match: UserMatch) -> str | None:
    """Why ``ref`` cannot name a person when users are matched on ``match``, or ``None``.

    ``userPrincipalName`` and ``mail``: exactly one ``@``, something before it, no whitespace, a
    domain with a dot. ``employeeId``: non-empty, no surrounding whitespace, at most
    :data:`EMPLOYEE_ID_MAX` characters. Must not look anything up: this is about form only.
    """
    if match == "employeeId":
        if ref.strip() == "":
            return "is empty; give the person's employeeId"
        if ref != ref.strip():
            return f"{quote(ref)} starts or ends with a space; remove it"
        if len(ref) > EMPLOYEE_ID_MAX:
            return (
                f"{quote(ref)} is {len(ref)} characters long; an employeeId has at most "
                f"{EMPLOYEE_ID_MAX} in Entra"
            )
        return None
    what = "user principal name" if match == "userPrincipalName" else "mail address"
    if ref == "":
        return f"is empty; give the person's {what} (name@school.example)"
    return _address_problem(ref, what)
