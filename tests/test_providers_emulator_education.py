"""Education classes (``/education/classes``), the ``educationClass`` Teams template rule,
``resourceBehaviorOptions`` (creation only) and the welcome-email counter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.emulator import EmulatorTransport, Profile, Tenant
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"
CLASS_TEMPLATE = f"{GRAPH}/teamsTemplates('educationClass')"


def setup(profile: Profile | None = None) -> tuple[Tenant, httpx.Client, EmulatorTransport, VirtualClock]:
    tenant = Tenant(seed=3)
    tenant.add_user("teacher@oak.example")
    tenant.add_user("pupil1@oak.example")
    tenant.add_user("pupil2@oak.example")
    clock = VirtualClock()
    transport = EmulatorTransport(
        tenant, clock=clock, profile=profile or Profile.ideal().with_(education_rules=True)
    )
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    return tenant, http, transport, clock


def uid(tenant: Tenant, upn: str) -> str:
    return tenant.user_index["userPrincipalName"][upn]


CLASS_BODY: dict[str, Any] = {
    "displayName": "Oak 7A Maths",
    "mailNickname": "oak-7a-maths",
    "description": "Year 7 maths, set A",
    "classCode": "7A/Ma1",
    "externalId": "oak:7A-Ma1",
    "externalName": "7A Maths",
    "externalSource": "sis",
    "term": {
        "displayName": "2026/27",
        "externalId": "T2026",
        "startDate": "2026-09-01",
        "endDate": "2027-07-20",
    },
}


def make_class(http: httpx.Client, **changes: Any) -> dict[str, Any]:
    r = http.post("/education/classes", json={**CLASS_BODY, **changes})
    assert r.status_code == 201, r.text
    return dict(r.json())


def error_of(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"} and {"code", "message", "innerError"} <= set(body["error"])
    return dict(body["error"])


def test_post_class_creates_its_unified_group_with_the_same_id() -> None:
    tenant, http, _, _ = setup()
    cls = make_class(http)
    assert cls["@odata.type"] == "#microsoft.graph.educationClass"
    assert (
        cls["classCode"] == "7A/Ma1"
        and cls["externalSource"] == "sis"
        and cls["term"]["externalId"] == "T2026"
    )
    group = http.get(f"/groups/{cls['id']}").json()
    assert group["id"] == cls["id"]
    assert (
        group["groupTypes"] == ["Unified"]
        and group["mailEnabled"] is True
        and group["securityEnabled"] is False
    )
    assert group["mailNickname"] == "oak-7a-maths" and group["displayName"] == "Oak 7A Maths"
    got = http.get(f"/education/classes/{cls['id']}").json()
    assert got["externalId"] == "oak:7A-Ma1" and got["description"] == "Year 7 maths, set A"
    assert [c["id"] for c in http.get("/education/classes").json()["value"]] == [cls["id"]]
    assert cls["id"] in tenant.classes


def test_class_group_is_patchable_through_groups_and_the_class_sees_it() -> None:
    _, http, _, _ = setup()
    app = "00000000-0000-0000-0000-0000000000a1"
    ext = http.post(
        f"/applications(appId='{app}')/extensionProperties",
        json={"name": "managedBy", "dataType": "String", "targetObjects": ["Group"]},
    )
    assert ext.status_code == 201, ext.text
    name = ext.json()["name"]
    cls = make_class(http)
    r = http.patch(f"/groups/{cls['id']}", json={name: "entra-sync", "description": "changed"})
    assert r.status_code == 204, r.text
    assert http.get(f"/groups/{cls['id']}", params={"$select": f"id,{name}"}).json()[name] == "entra-sync"
    assert http.get(f"/education/classes/{cls['id']}").json()["description"] == "changed"


def test_post_class_errors_have_graph_shape() -> None:
    _, http, _, _ = setup()
    missing = http.post("/education/classes", json={"displayName": "x"})
    assert missing.status_code == 400
    assert "mailNickname" in error_of(missing)["message"]
    bad_source = http.post("/education/classes", json={**CLASS_BODY, "externalSource": "csv"})
    assert bad_source.status_code == 400 and "externalSource" in error_of(bad_source)["message"]
    unknown = http.post("/education/classes", json={**CLASS_BODY, "groupTypes": ["Unified"]})
    assert unknown.status_code == 400 and "groupTypes" in error_of(unknown)["message"]
    make_class(http)
    dup = http.post("/education/classes", json={**CLASS_BODY, "displayName": "other"})
    assert dup.status_code == 400
    assert error_of(dup)["code"] == "Request_MultipleObjectsWithSameKeyValue"
    nope = http.get("/education/classes/00000000-0000-4000-8000-000000000001")
    assert nope.status_code == 404 and error_of(nope)["code"] == "Request_ResourceNotFound"


def test_members_and_teachers_refs_map_to_group_members_and_owners() -> None:
    tenant, http, _, _ = setup()
    cls = make_class(http)
    cid = cls["id"]
    teacher, pupil = uid(tenant, "teacher@oak.example"), uid(tenant, "pupil1@oak.example")
    r = http.post(
        f"/education/classes/{cid}/teachers/$ref", json={"@odata.id": f"{GRAPH}/education/users/{teacher}"}
    )
    assert r.status_code == 204, r.text
    r = http.post(
        f"/education/classes/{cid}/members/$ref", json={"@odata.id": f"{GRAPH}/education/users/{pupil}"}
    )
    assert r.status_code == 204, r.text
    r = http.post(
        f"/education/classes/{cid}/members/$ref", json={"@odata.id": f"{GRAPH}/education/users/{teacher}"}
    )
    assert r.status_code == 204, r.text
    members = http.get(f"/education/classes/{cid}/members").json()["value"]
    assert {m["id"] for m in members} == {teacher, pupil}
    assert {m["@odata.type"] for m in members} == {"#microsoft.graph.educationUser"}
    assert [t["id"] for t in http.get(f"/education/classes/{cid}/teachers").json()["value"]] == [teacher]
    assert [o["id"] for o in http.get(f"/groups/{cid}/owners").json()["value"]] == [teacher]
    dup = http.post(
        f"/education/classes/{cid}/members/$ref", json={"@odata.id": f"{GRAPH}/education/users/{pupil}"}
    )
    assert dup.status_code == 400 and "already exist" in error_of(dup)["message"]
    assert http.delete(f"/education/classes/{cid}/members/{pupil}/$ref").status_code == 204
    gone = http.delete(f"/education/classes/{cid}/members/{pupil}/$ref")
    assert gone.status_code == 404
    last = http.delete(f"/education/classes/{cid}/teachers/{teacher}/$ref")
    assert last.status_code == 400 and "at least one owner" in error_of(last)["message"]


def test_class_template_refused_on_a_plain_group_with_graphs_error() -> None:
    tenant, http, _, _ = setup()
    teacher = uid(tenant, "teacher@oak.example")
    r = http.post(
        "/groups",
        json={
            "displayName": "7A",
            "mailNickname": "plain7a",
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "owners@odata.bind": [f"{GRAPH}/users/{teacher}"],
        },
    )
    gid = r.json()["id"]
    refused = http.post(
        "/teams", json={"template@odata.bind": CLASS_TEMPLATE, "group@odata.bind": f"{GRAPH}/groups('{gid}')"}
    )
    assert refused.status_code == 400
    err = error_of(refused)
    assert err["code"] == "BadRequest"
    assert err["message"].startswith(
        "Failed to execute Templates backend request CreateTeamFromGroupWithTemplateRequest."
    )
    reason = "Team with template 'educationClass' can not be provisioned using a group which does not belong"
    assert f"{reason} to a class." in err["message"]
    assert gid not in tenant.teams
    cls = make_class(http)
    http.post(
        f"/education/classes/{cls['id']}/teachers/$ref",
        json={"@odata.id": f"{GRAPH}/education/users/{teacher}"},
    )
    ok = http.post(
        "/teams",
        json={"template@odata.bind": CLASS_TEMPLATE, "group@odata.bind": f"{GRAPH}/groups('{cls['id']}')"},
    )
    assert ok.status_code == 202, ok.text


def test_class_template_rule_is_a_profile_switch() -> None:
    tenant, http, _, _ = setup(Profile.ideal())
    teacher = uid(tenant, "teacher@oak.example")
    gid = http.post(
        "/groups",
        json={
            "displayName": "7A",
            "mailNickname": "plain7a",
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "owners@odata.bind": [f"{GRAPH}/users/{teacher}"],
        },
    ).json()["id"]
    r = http.post(
        "/teams", json={"template@odata.bind": CLASS_TEMPLATE, "group@odata.bind": f"{GRAPH}/groups('{gid}')"}
    )
    assert r.status_code == 202
    assert Profile.strict().education_rules is True


def unified_body(nick: str, members: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "displayName": nick,
        "mailNickname": nick,
        "mailEnabled": True,
        "securityEnabled": False,
        "groupTypes": ["Unified"],
        "owners@odata.bind": [f"{GRAPH}/users/{members[0]}"],
        "members@odata.bind": [f"{GRAPH}/users/{m}" for m in members],
        **extra,
    }


def test_welcome_emails_counted_unless_disabled_at_creation() -> None:
    tenant, http, transport, _ = setup()
    ids = [uid(tenant, u) for u in ("teacher@oak.example", "pupil1@oak.example", "pupil2@oak.example")]
    loud = http.post("/groups", json=unified_body("loud", ids[:2]))
    assert loud.status_code == 201, loud.text
    assert transport.counters.welcome_emails == 2
    http.post(
        f"/groups/{loud.json()['id']}/members/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{ids[2]}"}
    )
    assert transport.counters.welcome_emails == 3
    quiet = http.post(
        "/groups",
        json=unified_body(
            "quiet", ids, resourceBehaviorOptions=["WelcomeEmailDisabled", "HideGroupInOutlook"]
        ),
    )
    assert quiet.status_code == 201, quiet.text
    assert quiet.json()["resourceBehaviorOptions"] == ["WelcomeEmailDisabled", "HideGroupInOutlook"]
    security = http.post(
        "/groups",
        json={
            "displayName": "s",
            "mailNickname": "s",
            "mailEnabled": False,
            "securityEnabled": True,
            "members@odata.bind": [f"{GRAPH}/users/{ids[1]}"],
            "owners@odata.bind": [f"{GRAPH}/users/{ids[0]}"],
        },
    )
    assert security.status_code == 201
    assert transport.counters.welcome_emails == 3 == tenant.welcome_emails
    assert transport.counters.snapshot()["welcome_emails"] == 3
    cls = make_class(http)
    http.post(
        f"/education/classes/{cls['id']}/members/$ref",
        json={"@odata.id": f"{GRAPH}/education/users/{ids[1]}"},
    )
    assert transport.counters.welcome_emails == 3  # class groups: see Profile.class_welcome_emails


def test_resource_behavior_options_creation_only_and_known_values() -> None:
    tenant, http, _, _ = setup()
    ids = [uid(tenant, "teacher@oak.example")]
    bad = http.post("/groups", json=unified_body("bad", ids, resourceBehaviorOptions=["NoWelcome"]))
    assert bad.status_code == 400
    assert error_of(bad)["message"] == (
        "Invalid value specified for property 'resourceBehaviorOptions' of resource 'Group'."
    )
    gid = http.post(
        "/groups", json=unified_body("ok", ids, resourceBehaviorOptions=["WelcomeEmailDisabled"])
    ).json()["id"]
    patch = http.patch(f"/groups/{gid}", json={"resourceBehaviorOptions": []})
    assert patch.status_code == 400
    err = error_of(patch)
    assert err["code"] == "Request_BadRequest"
    assert err["message"] == "Property resourceBehaviorOptions cannot be updated because it is immutable."
    assert http.get(f"/groups/{gid}").json()["resourceBehaviorOptions"] == ["WelcomeEmailDisabled"]


def test_hide_from_address_lists_only_by_patch() -> None:
    tenant, http, _, _ = setup()
    ids = [uid(tenant, "teacher@oak.example")]
    refused = http.post("/groups", json=unified_body("h", ids, hideFromAddressLists=True))
    assert refused.status_code == 400 and "hideFromAddressLists" in error_of(refused)["message"]
    gid = http.post("/groups", json=unified_body("h", ids)).json()["id"]
    r = http.patch(f"/groups/{gid}", json={"hideFromAddressLists": True, "hideFromOutlookClients": True})
    assert r.status_code == 204, r.text
    got = http.get(f"/groups/{gid}", params={"$select": "hideFromAddressLists,hideFromOutlookClients"}).json()
    assert got["hideFromAddressLists"] is True and got["hideFromOutlookClients"] is True
    assert http.patch(f"/groups/{gid}", json={"hideFromAddressLists": "yes"}).status_code == 400


def test_new_class_hidden_from_list_and_filter_while_get_by_id_works() -> None:
    _, http, _, clock = setup(Profile.ideal().with_(education_rules=True, replication_lag=5.0))
    cls = make_class(http)
    assert http.get("/education/classes").json()["value"] == []
    assert (
        http.get("/education/classes", params={"$filter": "externalId eq 'oak:7A-Ma1'"}).json()["value"] == []
    )
    assert http.get(f"/education/classes/{cls['id']}").status_code == 200
    clock.advance(6)
    hits = http.get("/education/classes", params={"$filter": "externalId eq 'oak:7A-Ma1'"}).json()["value"]
    assert [h["id"] for h in hits] == [cls["id"]]


def test_classes_survive_save_and_load(tmp_path: Path) -> None:
    tenant, http, _, _ = setup()
    ids = [uid(tenant, "teacher@oak.example")]
    cls = make_class(http)
    http.post("/groups", json=unified_body("loud", ids))
    tenant.save(tmp_path / "t.json")
    loaded = Tenant.load(tmp_path / "t.json")
    assert loaded.classes == tenant.classes and cls["id"] in loaded.classes
    assert loaded.welcome_emails == 1


@pytest.mark.parametrize("path", ["/education/classes/{id}/members", "/education/classes/{id}/teachers"])
def test_class_lists_404_for_a_plain_group(path: str) -> None:
    tenant, http, _, _ = setup()
    gid = http.post("/groups", json=unified_body("plain", [uid(tenant, "teacher@oak.example")])).json()["id"]
    r = http.get(path.format(id=gid))
    assert r.status_code == 404 and error_of(r)["code"] == "Request_ResourceNotFound"


def test_patch_and_delete_class() -> None:
    tenant, http, _, _ = setup()
    cls = make_class(http)
    cid = cls["id"]
    r = http.patch(
        f"/education/classes/{cid}", json={"displayName": "Oak 7A Maths (set 1)", "classCode": "7A/Ma9"}
    )
    assert r.status_code == 204, r.text
    got = http.get(f"/education/classes/{cid}").json()
    assert got["displayName"] == "Oak 7A Maths (set 1)" and got["classCode"] == "7A/Ma9"
    assert got["externalId"] == "oak:7A-Ma1"
    assert http.get(f"/groups/{cid}").json()["displayName"] == "Oak 7A Maths (set 1)"
    bad = http.patch(f"/education/classes/{cid}", json={"externalSource": "other"})
    assert bad.status_code == 400 and "externalSource" in error_of(bad)["message"]
    assert http.delete(f"/education/classes/{cid}").status_code == 204
    assert http.get(f"/education/classes/{cid}").status_code == 404
    assert http.get(f"/groups/{cid}").status_code == 404
    assert cid in tenant.deleted
    restored = http.post(f"/directory/deletedItems/{cid}/restore")
    assert restored.status_code == 200, restored.text
    assert http.get(f"/education/classes/{cid}").json()["classCode"] == "7A/Ma9"
