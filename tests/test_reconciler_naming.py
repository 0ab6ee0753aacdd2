"""Naming templates and filters: sandboxed, strict, and always producing legal mailNicknames."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.document.rules import MAIL_NICKNAME_MAX, mail_nickname_problem
from reconciler.errors import ConfigError
from reconciler.generate.naming import (
    DEFAULT_TEMPLATES,
    TEMPLATE_VARIABLES,
    CompiledTemplate,
    compile_template,
    nickname,
    short_hash,
    slug,
    template_problems,
    to_ascii,
    truncate_to,
)

CLASS_VARS = TEMPLATE_VARIABLES["class_group"]


def render(source: str, **variables: object) -> str:
    return compile_template("naming.test", source).render(variables)


# -- filters ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Zoë Brontë", "Zoe Bronte"),
        ("Æsop Œuvre straße", "AEsop OEuvre strasse"),
        ("Łódź Ørsted þorn", "Lodz Orsted thorn"),
        ("ﬁne ligature", "fine ligature"),
        ("Siobhán Ó Súilleabháin", "Siobhan O Suilleabhain"),
        ("日本語 abc", " abc"),
        ("O’Brien – Year 7", "O'Brien - Year 7"),
    ],
)
def test_ascii_folds_accents_and_ligatures(text: str, expected: str) -> None:
    assert to_ascii(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7A Maths 1", "7a-maths-1"),
        ("  Math -- Algebra 1  ", "math-algebra-1"),
        ("Zoë's Group!", "zoe-s-group"),
        ("日本語", ""),
    ],
)
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_nickname_keeps_legal_values_and_cleans_the_rest() -> None:
    assert nickname("7a-ma1-2026-27") == "7a-ma1-2026-27"
    assert nickname("Math - Algebra 1") == "Math-Algebra-1"
    assert nickname("a.b@c (d)") == "a-b-c-d"
    assert nickname("Zoë_Group") == "Zoe_Group"


def test_nickname_of_nothing_usable_is_a_stable_hash() -> None:
    assert nickname("日本語") == "g-" + short_hash("日本語", 8)
    assert nickname("") == nickname("")
    assert nickname("日本語") != nickname("中文")


def test_nickname_too_long_is_cut_with_a_hash_of_the_whole_value() -> None:
    a = nickname("x" * 100 + "a")
    b = nickname("x" * 100 + "b")
    assert len(a) == MAIL_NICKNAME_MAX and len(b) == MAIL_NICKNAME_MAX
    assert a != b
    assert a.startswith("x" * 50)
    assert a == nickname("x" * 100 + "a")


def test_truncate_to_keeps_short_values_and_hashes_long_ones() -> None:
    assert truncate_to("short", 10) == "short"
    long_a, long_b = "A very long class name a", "A very long class name b"
    assert len(truncate_to(long_a, 15)) <= 15
    assert truncate_to(long_a, 15) != truncate_to(long_b, 15)
    assert truncate_to(long_a, 15).startswith("A very l")
    assert truncate_to(long_a, 4) == short_hash(long_a, 6)[:4]
    with pytest.raises(ValueError):
        truncate_to("x", 0)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_nickname_is_always_legal_and_idempotent(text: str) -> None:
    value = nickname(text)
    assert mail_nickname_problem(value) is None
    assert 1 <= len(value) <= MAIL_NICKNAME_MAX
    assert "." not in value
    assert nickname(value) == value


@settings(max_examples=200, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=300))
def test_truncate_to_never_exceeds_its_length(text: str, n: int) -> None:
    out = truncate_to(text, n)
    assert len(out) <= n
    if len(text) <= n:
        assert out == text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_slug_and_ascii_are_ascii(text: str) -> None:
    assert to_ascii(text).isascii()
    s = slug(text)
    assert all(c.islower() or c.isdigit() or c == "-" for c in s)
    assert "--" not in s and not s.startswith("-") and not s.endswith("-")


# -- the environment ----------------------------------------------------------------------------------


def test_filters_are_available_in_templates() -> None:
    out = render(
        "{{ name | ascii }}|{{ name | slug }}|{{ name | nickname }}|{{ name | upper }}|"
        "{{ name | truncate_to(5) }}",
        name="Zoë Class",
    )
    assert out.split("|")[:4] == ["Zoe Class", "zoe-class", "Zoe-Class", "ZOË CLASS"]
    assert len(out.split("|")[4]) <= 5


def test_output_whitespace_is_collapsed_and_none_prints_empty() -> None:
    assert render("  {{ a }}   {{ b }}\n ", a="x", b=None) == "x"
    assert render("{{ a }}  -  {{ b }}", a="x", b="y") == "x - y"


def test_no_autoescape() -> None:
    assert render("{{ a }}", a="Tom & Jerry <3") == "Tom & Jerry <3"


def test_undefined_attribute_is_a_config_error_naming_template_and_object() -> None:
    t = compile_template("naming.class_group.display_name", "{{ class.nmae }}", CLASS_VARS)
    with pytest.raises(ConfigError) as err:
        t.render({"class": {"name": "7A"}}, subject="class:S:2026-27:7A")
    msg = str(err.value)
    assert "naming.class_group.display_name" in msg
    assert "nmae" in msg
    assert "class:S:2026-27:7A" in msg
    assert err.value.key == "naming.class_group.display_name"


def test_sandbox_refuses_unsafe_attributes() -> None:
    t = compile_template("naming.x", "{{ a.__class__.__mro__ }}")
    with pytest.raises(ConfigError, match=r"naming\.x"):
        t.render({"a": "s"})


def test_syntax_error_is_a_config_error_with_line() -> None:
    with pytest.raises(ConfigError) as err:
        compile_template("naming.class_group.description", "ok\n{{ class.name ", CLASS_VARS)
    assert "naming.class_group.description" in str(err.value)
    assert "line 2" in str(err.value)


def test_unknown_variable_found_without_rendering_with_suggestion() -> None:
    problems = template_problems("k", "{{ clas.name }} {{ school.name }}", CLASS_VARS)
    assert len(problems) == 1
    assert "'clas'" in problems[0] and "did you mean 'class'" in problems[0]
    # names set inside the template are not unknown
    assert (
        template_problems("k", "{% set x = 1 %}{{ x }}{% for c in [1] %}{{ c }}{% endfor %}", CLASS_VARS)
        == []
    )


@pytest.mark.parametrize("kind", sorted(DEFAULT_TEMPLATES))
def test_default_templates_compile_and_use_only_known_variables(kind: str) -> None:
    for field, source in DEFAULT_TEMPLATES[kind].items():
        assert template_problems(f"naming.{kind}.{field}", source, TEMPLATE_VARIABLES[kind]) == []


def test_default_class_names_carry_the_academic_year() -> None:
    variables = {
        "class": {"name": "7A Maths 1", "code": "7A-Ma1"},
        "school": {"name": "Oak Academy", "short_name": "Oak"},
        "academic_year": "2026-27",
        "key": "class:OAK:2026-27:c1",
    }
    for field in ("display_name", "mail_nickname"):
        out = compile_template("k", DEFAULT_TEMPLATES["class_group"][field]).render(variables)
        assert "2026-27" in out
    nick = compile_template("k", DEFAULT_TEMPLATES["class_group"]["mail_nickname"]).render(variables)
    # the nickname ends in a hash of the group's own key (and nothing about any other group)
    assert nick == f"7a-ma1-2026-27-{short_hash('class:OAK:2026-27:c1')}"
    name = compile_template("k", DEFAULT_TEMPLATES["class_group"]["display_name"]).render(variables)
    assert name == "Oak 7A Maths 1 (2026-27)"  # two schools' "7A Maths 1" are different names


# -- plain templates: rendered without Jinja's per-render work, to the same text ----------------------

_names = st.sampled_from(["school", "class", "academic_year", "key", "year_group", "missing", "range"])
_attrs = st.sampled_from(["name", "code", "short_name", "missing", "items", "__class__"])
_filters = st.sampled_from(
    ["slug", "short_hash", "short_hash(4)", "nickname", "ascii", "truncate_to(3)", "truncate_to(0)",
     "upper", "lower", "trim", "default('d')", "replace('a', 'b')", "truncate(4)", "join(',')", "length"]
)  # fmt: skip
_exprs = st.recursive(
    st.one_of(
        _names,
        st.tuples(_names, _attrs).map(".".join),
        st.sampled_from(["none", "'lit'", "5", "''"]),
    ),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f"({p[0]} or {p[1]})"),
        st.tuples(inner, _filters).map(lambda p: f"{p[0]} | {p[1]}"),
    ),
    max_leaves=4,
)
_texts = st.sampled_from(["", " ", "-", "  (", ")\n", "Class ", "é"])
_templates = st.lists(st.tuples(_texts, _exprs), min_size=1, max_size=3).map(
    lambda parts: "".join(f"{text}{{{{ {expr} }}}}" for text, expr in parts)
) | st.sampled_from(["{% if class %}x{% endif %}", "{{ class.name ~ 'x' }}", "{{ 'x' * 3 }}", "plain"])
_cells = st.one_of(
    st.sampled_from(["7A Maths", "", "Ünï", "a" * 5000, " spaced  out "]), st.none(), st.integers(0, 9)
)
_vars = st.fixed_dictionaries(
    {
        "school": st.fixed_dictionaries({"name": _cells, "short_name": _cells}),
        "class": st.one_of(st.fixed_dictionaries({"name": _cells, "code": _cells}), st.none(), _cells),
        "academic_year": _cells,
        "key": _cells,
        "year_group": st.one_of(st.none(), st.fixed_dictionaries({"name": _cells})),
    }
)


def _outcome(template: CompiledTemplate, variables: dict[str, object]) -> tuple[str, str]:
    try:
        return "text", template.render(variables, subject="class c1")
    except ConfigError as exc:
        return "error", str(exc)


@settings(max_examples=400, deadline=None)
@given(_templates, _vars)
def test_a_plain_template_renders_what_jinja_renders(source: str, variables: dict[str, object]) -> None:
    compiled = compile_template("naming.class_group.display_name", source)
    by_jinja = dataclasses.replace(compiled, plain=None)
    assert _outcome(compiled, variables) == _outcome(by_jinja, variables)


def test_the_default_templates_are_plain() -> None:
    for kind, templates in DEFAULT_TEMPLATES.items():
        for name, source in templates.items():
            assert compile_template(f"naming.{kind}.{name}", source).plain is not None, (kind, name)
    for source in ("{% if class %}x{% endif %}", "{{ class.items }}", "{{ x | replace('a', 'b') }}"):
        assert compile_template("naming.test", source).plain is None, source
