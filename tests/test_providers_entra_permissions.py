"""Least-privilege table, required roles and the token role check."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from providers.entra.permissions import (
    FEATURE_PERMISSIONS,
    IMPLIED_BY,
    check_token_roles,
    covers,
    required_roles,
    token_roles,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "permissions.md"


def app_token(roles: object) -> str:
    def enc(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"aud": "https://graph.microsoft.com", "roles": roles}
    return f"{enc({'alg': 'RS256', 'typ': 'JWT'})}.{enc(claims)}.sig"


def test_required_roles_per_feature() -> None:
    assert required_roles(False, False, False) == {"User.Read.All"}
    assert required_roles(True, False, False) == {"User.Read.All", "Group.ReadWrite.All"}
    assert required_roles(False, True, False) == {"User.Read.All", "AdministrativeUnit.ReadWrite.All"}
    assert required_roles(True, True, True, setup=True) == {
        "User.Read.All",
        "Group.ReadWrite.All",
        "AdministrativeUnit.ReadWrite.All",
        "Team.Create",
        "TeamSettings.ReadWrite.All",
        "Application.ReadWrite.OwnedBy",
    }
    assert "Directory.ReadWrite.All" not in required_roles(True, True, True, setup=True)
    # class groups made as education classes (POST /education/classes) need EduRoster.ReadWrite.All
    assert required_roles(True, False, True, education_classes=True) == {
        "User.Read.All", "Group.ReadWrite.All", "Team.Create", "TeamSettings.ReadWrite.All",
        "EduRoster.ReadWrite.All",
    }
    assert "EduRoster.ReadWrite.All" not in required_roles(False, True, False, education_classes=True)


def test_a_token_without_eduroster_is_told_so() -> None:
    needed = required_roles(True, True, True, education_classes=True)
    check = check_token_roles(
        app_token(["User.Read.All", "Group.ReadWrite.All", "AdministrativeUnit.ReadWrite.All"]), needed
    )
    assert list(check) == ["EduRoster.ReadWrite.All"]


def test_missing_roles_are_named_sorted() -> None:
    needed = required_roles(True, True, True)
    check = check_token_roles(app_token(["User.Read.All", "Group.ReadWrite.All"]), needed)
    assert check.checked
    assert list(check) == ["AdministrativeUnit.ReadWrite.All"]  # Team.* covered by Group.ReadWrite.All
    assert "AdministrativeUnit.ReadWrite.All" in check.describe()


def test_broader_roles_cover_narrower_ones() -> None:
    assert covers({"Group.ReadWrite.All"}, "Group.Create")
    assert covers({"Group.ReadWrite.All"}, "GroupMember.ReadWrite.All")
    assert covers({"Group.ReadWrite.All"}, "GroupMember.ReadBasic.All")  # transitively
    assert covers({"Directory.ReadWrite.All"}, "AdministrativeUnit.Read.All")
    assert covers({"Application.ReadWrite.All"}, "Application.ReadWrite.OwnedBy")
    assert not covers({"Directory.ReadWrite.All"}, "Group.ReadWrite.All")  # it cannot delete groups
    assert not covers({"GroupMember.ReadWrite.All"}, "Group.Create")
    assert not covers({"User.Read.All"}, "User.ReadWrite.All")
    assert "Group.ReadWrite.All" in IMPLIED_BY["Group.Create"]


def test_directory_readwrite_all_still_misses_group_deletes() -> None:
    check = check_token_roles(app_token(["Directory.ReadWrite.All"]), required_roles(True, True, True))
    assert list(check) == ["Group.ReadWrite.All"]


def test_everything_granted_is_nothing_missing() -> None:
    needed = required_roles(True, True, True)
    check = check_token_roles(app_token(sorted(needed)), needed)
    assert check.checked and list(check) == []
    assert check.describe() == "the token has every permission needed"
    assert check.granted == needed


@pytest.mark.parametrize("token", ["emulator", "a.b", "x.!!!.z", app_token("not-a-list")])
def test_non_jwt_tokens_cannot_be_checked(token: str) -> None:
    check = check_token_roles(token, {"User.Read.All"})
    assert not check.checked and list(check) == []
    assert check.describe().startswith("cannot check")


def test_token_roles_reads_the_claim_only() -> None:
    assert token_roles(app_token(["A", 3, "B"])) == {"A", "B"}
    assert token_roles(app_token([])) == frozenset()


def test_docs_table_lists_every_permission_of_the_code_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    for row in FEATURE_PERMISSIONS:
        assert f"`{row.role}`" in text, row.role
    for role in required_roles(True, True, True, setup=True):
        assert f"- `{role}`" in text or f"`{role}` for" in text, role
