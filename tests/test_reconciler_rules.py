from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.document.rules import (
    BIDI_CONTROLS,
    DISPLAY_NAME_MAX,
    MAIL_NICKNAME_FORBIDDEN,
    MAIL_NICKNAME_MAX,
    display_name_problem,
    key_problem,
    mail_nickname_problem,
    quote,
    text_problem,
    user_ref_problem,
)


@pytest.mark.parametrize(
    "value",
    ["SCH1-2627-7A-Ma1", "a", "x" * MAIL_NICKNAME_MAX, "under_score", "Mixed-Case_09", "!#$%&'*+/=?^`{|}~"],
)
def test_legal_mail_nicknames(value: str) -> None:
    assert mail_nickname_problem(value) is None


def test_the_issue_example_sentence() -> None:
    assert mail_nickname_problem("7A Ma1") == '"7A Ma1" contains a space; use letters, digits, - or _'


@pytest.mark.parametrize("char", sorted(MAIL_NICKNAME_FORBIDDEN - {" "}))
def test_each_forbidden_character_is_named(char: str) -> None:
    problem = mail_nickname_problem(f"7A{char}Ma1")
    assert problem is not None
    assert "contains" in problem
    assert problem.endswith("use letters, digits, - or _")


def test_dot_is_forbidden_as_graph_facts_advise() -> None:
    assert "." in MAIL_NICKNAME_FORBIDDEN
    assert mail_nickname_problem("a.b") == '"a.b" contains "."; use letters, digits, - or _'


def test_non_ascii_and_control_characters() -> None:
    assert mail_nickname_problem("Élan") == '"Élan" contains "É" (not ASCII); use letters, digits, - or _'
    problem = mail_nickname_problem("a\tb")
    assert problem is not None and "U+0009" in problem


def test_several_problems_in_one_sentence() -> None:
    problem = mail_nickname_problem("a (b)" + "x" * 70)
    assert problem is not None
    assert 'contains a space, "(" and ")"' in problem
    assert "is 75 characters long (at most 64)" in problem


def test_too_long_and_empty_nicknames() -> None:
    assert mail_nickname_problem("x" * (MAIL_NICKNAME_MAX + 1)) == (
        f'"{"x" * 65}" is 65 characters long (at most 64); shorten it'
    )
    problem = mail_nickname_problem("")
    assert problem is not None and problem.startswith("is empty")


def test_display_names() -> None:
    assert display_name_problem("Oak Academy 7A Maths 1 (2026-27)") is None
    assert display_name_problem("é" * DISPLAY_NAME_MAX) is None
    long = display_name_problem("x" * (DISPLAY_NAME_MAX + 1))
    assert long is not None and "257 characters long" in long and "256" in long
    assert display_name_problem("   ") == "is empty; give the object a name people will recognise"
    padded = display_name_problem(" 7A ")
    assert padded is not None and "starts or ends with a space" in padded
    control = display_name_problem("7A\nMaths")
    assert control is not None and "U+000A" in control


def test_keys() -> None:
    assert key_problem("class:SCH1:2026-27:7A-Ma1") is None
    assert key_problem("x" * 200) is None
    too_long = key_problem("x" * 201)
    assert too_long is not None and "at most 200" in too_long
    spaced = key_problem("class:SCH1:7A Ma1")
    assert spaced is not None and "a space" in spaced
    newline = key_problem("au:SCH1\n")
    assert newline is not None and "U+000A" in newline
    empty = key_problem("")
    assert empty is not None and empty.startswith("is empty")


@pytest.mark.parametrize("match", ["userPrincipalName", "mail"])
@pytest.mark.parametrize("ref", ["amy.jones@students.oakfield.example", "a@b.c", "O'Neil@x.example"])
def test_good_addresses(ref: str, match: str) -> None:
    assert user_ref_problem(ref, match) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ref", "phrase"),
    [
        ("amy jones@oak.example", "contains a space"),
        ("amy.jones", "has no @"),
        ("a@b@oak.example", "has 2 @ signs"),
        ("@oak.example", "nothing before the @"),
        ("amy@localhost", "no valid domain"),
        ("amy@oak..example", "no valid domain"),
        ("amy@oak.example.", "no valid domain"),
        ("", "is empty"),
        ("a@" + "b" * 300 + ".example", "characters long"),
    ],
)
def test_bad_upns(ref: str, phrase: str) -> None:
    problem = user_ref_problem(ref, "userPrincipalName")
    assert problem is not None
    assert phrase in problem


def test_mail_wording_differs_from_upn() -> None:
    problem = user_ref_problem("amy", "mail")
    assert problem is not None and "mail address" in problem


def test_employee_ids() -> None:
    assert user_ref_problem("E0001234", "employeeId") is None
    assert user_ref_problem("x" * 16, "employeeId") is None
    long = user_ref_problem("x" * 17, "employeeId")
    assert long is not None and "at most 16" in long
    empty = user_ref_problem(" ", "employeeId")
    assert empty is not None and empty.startswith("is empty")
    padded = user_ref_problem(" E1", "employeeId")
    assert padded is not None and "starts or ends with a space" in padded


def test_quote_shortens_long_values() -> None:
    assert quote("abc") == '"abc"'
    shown = quote("x" * 100)
    assert len(shown) == 72 and shown.endswith('…"')


_odd_text = st.text(
    st.sampled_from(list("aZ9 \t\n\r\x00\x1f\x7f\x85\x9f\xa0é@.(-_~\u202e\u2066\u200e\u061c\u2028\u3000")),
    max_size=70,
)


def _control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc"


@settings(max_examples=500, deadline=None)
@given(_odd_text | st.text(max_size=300))
def test_the_one_step_checks_accept_exactly_what_the_rules_allow(value: str) -> None:
    bidi = any(c in BIDI_CONTROLS for c in value)
    assert (text_problem(value) is None) == (not bidi and not any(map(_control, value)))
    lines_ok = not bidi and not any(_control(c) and c not in "\t\r\n" for c in value)
    assert (text_problem(value, newlines=True) is None) == lines_ok
    nickname_ok = 0 < len(value) <= MAIL_NICKNAME_MAX and all(
        33 <= ord(c) < 127 and c not in MAIL_NICKNAME_FORBIDDEN for c in value
    )
    assert (mail_nickname_problem(value) is None) == nickname_ok
    display_ok = (
        value.strip() == value != "" and len(value) <= DISPLAY_NAME_MAX
        and not bidi and not any(map(_control, value))
    )  # fmt: skip
    assert (display_name_problem(value) is None) == display_ok
