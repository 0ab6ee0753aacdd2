"""Education classes and quiet groups: exact request shapes (respx), following Graph's documented
``POST /education/classes``, ``educationclass-post-teachers`` and ``group-set-options``."""

from __future__ import annotations

import httpx
import pytest
import respx

from providers.entra.write import DEFAULT_BEHAVIOR_OPTIONS, EntraWriter
from reconciler.errors import DirectoryError
from reconciler.model import EducationClass, Group
from reconciler.settings import SyncConfig
from tests.test_providers_entra_write import BASE, MARKER, body, err, make, ref, sent, uid

CLASS = Group(
    "class:OAK:2026-27:7A-Ma1", "Oak 7A Maths 1 (2026-27)", "7a-ma1-2026-27-1a2b3c4d",
    description="Class 7A Maths 1 at Oak Academy", visibility="HiddenMembership",
    education=EducationClass("class:OAK:2026-27:7A-Ma1", "7A-Ma1", "7A Maths 1", "2026-27"),
)


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


def test_a_class_is_created_as_an_education_class_then_stamped_then_teachers_and_members(
    router: respx.Router,
) -> None:
    router.post("/education/classes").respond(201, json={"id": "c1", "displayName": CLASS.display_name})
    router.patch("/groups/c1").respond(204)
    router.post("/$batch").mock(side_effect=lambda r: httpx.Response(200, json={"responses": [
        {"id": i["id"], "status": 204, "headers": {}, "body": None} for i in body(r)["requests"]]}))
    w, _ = make(router)
    result = w.create_group(CLASS, [uid(1)], [uid(1), *(uid(n) for n in range(100, 125))])
    assert result.object_id == "c1" and result.failures == ()
    create = body(sent(router, "POST")[0])
    assert sent(router, "POST")[0].url.path == "/v1.0/education/classes"
    assert create == {
        "displayName": "Oak 7A Maths 1 (2026-27)",
        "mailNickname": "7a-ma1-2026-27-1a2b3c4d",
        "description": "Class 7A Maths 1 at Oak Academy",
        "classCode": "7A-Ma1",
        "externalId": "class:OAK:2026-27:7A-Ma1",
        "externalName": "7A Maths 1",
        "externalSource": "sis",
        "term": {"displayName": "2026-27", "externalId": "2026-27"},
    }
    # nothing an educationClass does not have: no marker, binds, group types or behaviour options
    assert MARKER not in create and "resourceBehaviorOptions" not in create
    patches = [body(r) for r in sent(router, "PATCH")]
    assert patches[0] == {MARKER: CLASS.key}  # the ownership marker, first
    batch = body(next(r for r in sent(router, "POST") if r.url.path.endswith("$batch")))["requests"]
    assert batch == [{
        "id": batch[0]["id"], "method": "POST", "url": "/education/classes/c1/teachers/$ref",
        "body": {"@odata.id": f"{BASE}/education/users/{uid(1)}"},
        "headers": {"Content-Type": "application/json"},
    }]
    bound = [m for p in patches[1:] for m in p["members@odata.bind"]]
    assert sorted(bound) == sorted([ref(1), *(ref(n) for n in range(100, 125))])
    assert [len(p["members@odata.bind"]) for p in patches[1:]] == [20, 6]


def test_the_marker_stamp_waits_out_replication_lag_on_the_new_class(router: respx.Router) -> None:
    router.post("/education/classes").respond(201, json={"id": "c1"})
    stamp = router.patch("/groups/c1")
    stamp.side_effect = [httpx.Response(404, json=err("Request_ResourceNotFound", "does not exist")),
                         httpx.Response(204)]
    w, clock = make(router)
    assert w.create_group(CLASS, [], []).object_id == "c1"
    assert stamp.call_count == 2 and clock.slept > 0


def test_a_lost_class_create_is_found_by_its_external_id_not_created_twice(router: respx.Router) -> None:
    post = router.post("/education/classes").mock(side_effect=httpx.ReadTimeout("lost"))
    listing = {"value": [{"id": "c9", "externalId": CLASS.key}]}
    found = router.get("/education/classes").respond(200, json=listing)
    router.patch("/groups/c9").respond(204)
    w, _ = make(router)
    assert w.create_group(CLASS, [], []).object_id == "c9"
    assert post.call_count == 1
    assert found.calls[0].request.url.params["$filter"] == f"externalId eq '{CLASS.key}'"


def test_without_eduroster_the_class_create_names_the_permission(router: respx.Router) -> None:
    denied = err("Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    router.post("/education/classes").respond(403, json=denied)
    w, _ = make(router)
    with pytest.raises(DirectoryError, match=r"EduRoster\.ReadWrite\.All"):
        w.create_group(CLASS, [uid(1)], [])


def test_a_microsoft_365_group_is_created_quiet_by_default(router: respx.Router) -> None:
    router.post("/groups").respond(201, json={"id": "g1"})
    w, _ = make(router)
    w.create_group(Group("mentor:OAK:2026-27:7X", "Oak mentor group 7X", "mentor-7x"), [uid(1)], [])
    create = body(sent(router, "POST")[0])
    assert create["resourceBehaviorOptions"] == [
        "HideGroupInOutlook", "SubscribeMembersToCalendarEventsDisabled", "WelcomeEmailDisabled"
    ]
    assert tuple(create["resourceBehaviorOptions"]) == SyncConfig().resource_behavior_options()
    assert SyncConfig().resource_behavior_options() == DEFAULT_BEHAVIOR_OPTIONS


def test_the_sync_settings_choose_the_behaviour_options(router: respx.Router) -> None:
    router.post("/groups").respond(201, json={"id": "g1"})
    w, _ = make(router)
    loud = SyncConfig(welcome_email=True, subscribe_members_to_mail=True, hide_from_address_lists=False)
    w = EntraWriter(w.client, MARKER, clock=w.clock, graph_base=BASE,
                    behavior_options=loud.resource_behavior_options())
    w.create_group(Group("g", "G", "g"), [uid(1)], [])
    assert body(sent(router, "POST")[0])["resourceBehaviorOptions"] == ["SubscribeNewGroupMembers"]


def test_a_security_group_carries_no_behaviour_options(router: respx.Router) -> None:
    router.post("/groups").respond(201, json={"id": "g1"})
    w, _ = make(router)
    w.create_group(Group("g", "G", "g", kind="security"), [uid(1)], [])
    assert "resourceBehaviorOptions" not in body(sent(router, "POST")[0])
