"""Typed identity: keys and person references normalised once, paired as Entra compares them."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.generate.generator import key_part
from reconciler.identity import Key, TeamKey, fold, group_of, team_key, user_ref
from reconciler.model import ActualState, AdministrativeUnit, DesiredState, Group, Team
from reconciler.plan.align import align
from reconciler.plan.diff import diff
from reconciler.plan.fingerprint import fingerprint

COMPOSED = "class:OAK:2026-27:Fran\u00e7ais-\u00e9t\u00e9"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)


def key_part_of(prefix: str, source_id: str) -> str:
    return prefix + key_part(source_id)


def test_composed_and_decomposed_spellings_are_one_key() -> None:
    assert COMPOSED != DECOMPOSED  # as plain strings they differ
    assert Key(COMPOSED) == Key(DECOMPOSED)
    assert hash(Key(COMPOSED)) == hash(Key(DECOMPOSED))
    assert len({Key(COMPOSED), Key(DECOMPOSED)}) == 1
    assert str(Key(DECOMPOSED)) == COMPOSED  # NFC, not folded: the source's letters are kept


def test_keys_differing_in_case_have_one_identity_and_keep_their_spelling() -> None:
    upper, lower = Key("class:OAK:2026-27:9A-Maths"), Key("class:oak:2026-27:9a-maths")
    assert upper.folded == lower.folded == "class:oak:2026-27:9a-maths"
    assert upper.same(lower) and upper.same("CLASS:oak:2026-27:9A-MATHS")
    assert not upper.same("class:OAK:2026-27:9B-Maths")
    assert json.dumps([upper]) == '["class:OAK:2026-27:9A-Maths"]'
    assert f"{upper}" == "class:OAK:2026-27:9A-Maths"
    assert Key(upper) is upper


def test_an_id_percent_encoded_in_a_key_has_the_identity_of_its_letters() -> None:
    # the generator percent-encodes ids in keys (key_part): a class "ÉCOLE" becomes %C3%89COLE
    # and "école" %C3%A9cole; the two differ only in case, so they name one object
    upper = Key(key_part_of("class:OAK:2026-27:", "ÉCOLE-7"))
    lower = Key(key_part_of("class:OAK:2026-27:", "école-7"))
    assert upper == "class:OAK:2026-27:%C3%89COLE-7" and lower == "class:OAK:2026-27:%C3%A9cole-7"
    assert upper.folded == lower.folded == Key("class:oak:2026-27:école-7").folded
    # escapes of ASCII characters keep their meaning: an encoded ":" is not a separator
    assert not Key("class:OAK:2026-27:a%3Ab").same("class:OAK:2026-27:a:b")
    assert Key("class:OAK:2026-27:a%3Ab").same("CLASS:oak:2026-27:A%3aB")
    # an escape run that is not UTF-8 is kept as it is
    assert fold("x:%C3%28") == "x:%c3%28"


def test_a_team_key_is_derived_from_its_group_key_in_one_place() -> None:
    t = team_key("class:OAK:2026-27:9A")
    assert isinstance(t, TeamKey) and t == "team:class:OAK:2026-27:9A"
    assert group_of(t) == "class:OAK:2026-27:9A" and group_of("TEAM:class:x") == "class:x"
    assert Team.of("class:OAK:2026-27:9A").key == t
    assert group_of("class:x") == "class:x"


def test_user_references_are_folded_and_nfc() -> None:
    assert user_ref("  Amy.Khan@Oak.Example ") == "amy.khan@oak.example"
    assert user_ref(unicodedata.normalize("NFD", "Z\u00e9lie@oak.example")) == "z\u00e9lie@oak.example"
    assert fold("\u00c9T\u00c9") == fold(unicodedata.normalize("NFD", "\u00e9t\u00e9"))


def test_the_model_boundary_makes_every_key_a_key() -> None:
    g = Group("class:A", "A", "a", administrative_units=frozenset({"au:X"}))
    assert type(g.key) is Key and all(type(a) is Key for a in g.administrative_units)
    actual = ActualState(groups={"class:A": g}, ids={"class:A": "id-a"})
    assert all(type(k) is Key for k in (*actual.groups, *actual.ids))


def _states(spell: str) -> tuple[DesiredState, ActualState]:
    au = AdministrativeUnit("au:OAK:Year-9", "Year 9", members=frozenset({"amy@oak.example"}))
    have = Group("class:OAK:9A-Maths", "9A Maths", "9a-maths", owners=frozenset({"tea@oak.example"}),
                 members=frozenset({"amy@oak.example"}), administrative_units=frozenset({au.key}))
    team = Team.of(have.key)
    actual = ActualState({au.key: au}, {have.key: have}, {have.key: team},
                         {au.key: "id-au", have.key: "id-g", team.key: "id-g"},
                         {"amy@oak.example": "u1", "tea@oak.example": "u2"})
    au_key = "au:OAK:Year-9".lower() if spell.islower() else "AU:OAK:YEAR-9" if spell.isupper() else au.key
    want_au = AdministrativeUnit(au_key, "Year 9", members=au.members)
    want = Group(spell, "9A Maths", "9a-maths", owners=have.owners, members=have.members,
                 administrative_units=frozenset({want_au.key}))
    return DesiredState((want_au,), (want,), (Team.of(want.key),)), actual


def test_keys_changed_only_in_case_plan_nothing() -> None:
    for spelling in ("class:oak:9a-maths", "CLASS:OAK:9A-MATHS", "class:OAK:9A-Maths"):
        desired, actual = _states(spelling)
        plan = diff(desired, actual)
        assert plan.changes == () and plan.warnings == (), spelling


def test_align_respells_the_actual_state_as_the_source_spells_it() -> None:
    desired, actual = _states("class:oak:9a-maths")
    aligned = align(desired, actual)
    assert list(aligned.groups) == ["class:oak:9a-maths"]
    assert aligned.groups["class:oak:9a-maths"].administrative_units == {"au:oak:year-9"}
    assert aligned.teams["class:oak:9a-maths"].key == "team:class:oak:9a-maths"
    assert aligned.ids == {"au:oak:year-9": "id-au", "class:oak:9a-maths": "id-g",
                           "team:class:oak:9a-maths": "id-g"}
    # the plan records the fingerprint of the state read from Entra, as apply reads it again
    assert diff(desired, actual).actual_fingerprint == fingerprint(actual)
    same, _ = _states("class:OAK:9A-Maths")
    assert align(same, actual) is actual  # nothing to respell: the read state itself


def test_a_real_change_to_a_respelled_group_is_planned_in_the_source_spelling() -> None:
    desired, actual = _states("class:oak:9a-maths")
    g = desired.groups[0]
    renamed = DesiredState(desired.administrative_units,
                           (Group(g.key, "Maths 9A", g.mail_nickname, owners=g.owners,
                                  members=g.members | {"tea@oak.example"},
                                  administrative_units=g.administrative_units),),
                           desired.teams)
    plan = diff(renamed, actual)
    assert [(c.id, c.object_id) for c in plan.changes] == [
        ("update:group:class:oak:9a-maths", "id-g"), ("add:groupMembers:class:oak:9a-maths", "id-g"),
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("aZ09-._~!$&'()*+,;=@ %/:?#[]é\u0301É\u00a0\x00")))
def test_key_part_encodes_what_quote_encodes_and_keeps_a_plain_id_as_it_is(source_id: str) -> None:
    from urllib.parse import quote

    expected = quote(unicodedata.normalize("NFC", source_id), safe="-._~!$&'()*+,;=@")
    assert key_part(source_id) == expected
