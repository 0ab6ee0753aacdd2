"""Teams from groups, async operations, archive; deleted items and restore."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from providers.emulator import EmulatorTransport, Profile, Tenant
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"
TEMPLATE = f"{GRAPH}/teamsTemplates('standard')"


def setup(profile: Profile | None = None) -> tuple[Tenant, httpx.Client, VirtualClock, str]:
    tenant = Tenant(seed=2)
    owner = tenant.add_user("teacher@oak.example")
    clock = VirtualClock()
    transport = EmulatorTransport(tenant, clock=clock, profile=profile or Profile.ideal())
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    return tenant, http, clock, owner


def create_group(http: httpx.Client, owner: str, nick: str = "class7a", unified: bool = True) -> str:
    body = {
        "displayName": nick,
        "mailEnabled": unified,
        "mailNickname": nick,
        "securityEnabled": not unified,
        "groupTypes": ["Unified"] if unified else [],
        "owners@odata.bind": [f"{GRAPH}/users/{owner}"],
    }
    r = http.post("/groups", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_post_teams_202_location_and_operation_completes_later() -> None:
    _, http, clock, owner = setup(Profile.ideal().with_(team_provision_delay=60.0))
    gid = create_group(http, owner)
    r = http.post(
        "/teams", json={"template@odata.bind": TEMPLATE, "group@odata.bind": f"{GRAPH}/groups('{gid}')"}
    )
    assert r.status_code == 202 and r.content == b""
    location = r.headers["Location"]
    assert location.startswith(f"/teams('{gid}')/operations('")
    op = http.get(location).json()
    assert op["status"] in ("notStarted", "inProgress") and op["targetResourceId"] == gid
    assert http.get(f"/teams/{gid}").status_code == 404
    assert "Team" not in http.get(f"/groups/{gid}").json()["resourceProvisioningOptions"]
    clock.advance(61)
    assert http.get(location).json()["status"] == "succeeded"
    team = http.get(f"/teams/{gid}").json()
    assert team["id"] == gid and team["isArchived"] is False
    assert http.get(f"/groups/{gid}").json()["resourceProvisioningOptions"] == ["Team"]
    again = http.post(
        "/teams", json={"template@odata.bind": TEMPLATE, "group@odata.bind": f"{GRAPH}/groups/{gid}"}
    )
    assert again.status_code == 409


def test_put_team_201_and_archive_unarchive() -> None:
    _, http, _, owner = setup()
    gid = create_group(http, owner)
    r = http.put(f"/groups/{gid}/team", json={})
    assert r.status_code == 201 and r.json()["id"] == gid
    r = http.post(f"/teams/{gid}/archive")
    assert r.status_code == 202 and "/operations('" in r.headers["Location"]
    assert http.get(f"/teams('{gid}')").json()["isArchived"] is True
    assert http.post(f"/teams/{gid}/unarchive").status_code == 202
    assert http.get(f"/teams/{gid}").json()["isArchived"] is False


def test_team_needs_unified_group_with_owner() -> None:
    tenant, http, _, owner = setup()
    sec = create_group(http, owner, "sec1", unified=False)
    assert http.put(f"/groups/{sec}/team", json={}).status_code == 400
    lonely = tenant.add_group("lonely")
    assert http.put(f"/groups/{lonely}/team", json={}).status_code == 400


def test_post_teams_from_group_rejects_inherited_fields() -> None:
    _, http, _, owner = setup()
    gid = create_group(http, owner)
    body = {
        "template@odata.bind": TEMPLATE,
        "group@odata.bind": f"{GRAPH}/groups('{gid}')",
        "displayName": "x",
    }
    assert http.post("/teams", json=body).status_code == 400


@pytest.mark.parametrize("age", [900.0, 0.0])
def test_team_creation_404_while_group_is_young_is_switchable(age: float) -> None:
    _, http, clock, owner = setup(Profile.ideal().with_(team_min_group_age=age))
    gid = create_group(http, owner)
    clock.advance(60)
    status = http.put(f"/groups/{gid}/team", json={}).status_code
    assert status == (404 if age else 201)
    if age:
        clock.advance(age)
        assert http.put(f"/groups/{gid}/team", json={}).status_code == 201


def test_deleted_m365_group_can_be_restored_and_security_group_is_gone() -> None:
    tenant, http, _, owner = setup()
    member = tenant.add_user("kid@oak.example")
    gid = create_group(http, owner)
    http.post(f"/groups/{gid}/members/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{member}"})
    sec = create_group(http, owner, "sec2", unified=False)
    assert http.delete(f"/groups/{gid}").status_code == 204
    assert http.delete(f"/groups/{sec}").status_code == 204
    assert http.get(f"/groups/{gid}").status_code == 404
    deleted = http.get("/directory/deletedItems/microsoft.graph.group").json()["value"]
    assert [g["id"] for g in deleted] == [gid] and deleted[0]["deletedDateTime"]
    r = http.post(f"/directory/deletedItems/{gid}/restore")
    assert r.status_code == 200 and r.json()["id"] == gid
    assert [m["id"] for m in http.get(f"/groups/{gid}/members").json()["value"]] == [member]
    assert http.post(f"/directory/deletedItems/{sec}/restore").status_code == 404


def test_restored_group_keeps_its_team_and_restored_user_its_ownership(tmp_path: Path) -> None:
    tenant, http, _, owner = setup()
    gid = create_group(http, owner)
    assert http.put(f"/groups/{gid}/team", json={}).status_code == 201
    assert http.delete(f"/groups/{gid}").status_code == 204
    assert http.get(f"/teams/{gid}").status_code == 404
    tenant.save(tmp_path / "t.json")
    reloaded = Tenant.load(tmp_path / "t.json")
    http2 = httpx.Client(
        transport=EmulatorTransport(reloaded, clock=VirtualClock()),
        base_url=GRAPH,
        headers={"Authorization": "Bearer t"},
    )
    assert http2.post(f"/directory/deletedItems/{gid}/restore").status_code == 200
    assert http2.get(f"/teams/{gid}").json()["id"] == gid
    assert http2.delete(f"/users/{owner}").status_code == 204
    assert reloaded.groups[gid].owners == {}
    assert http2.post(f"/directory/deletedItems/{owner}/restore").status_code == 200
    assert list(reloaded.groups[gid].owners) == [owner]
