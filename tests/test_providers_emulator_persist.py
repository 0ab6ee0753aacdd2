"""Saving and loading a tenant, seeding users from CSV/JSON, and the HTTP server + CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.emulator import EmulatorTransport, Tenant
from providers.emulator.persist import TenantFileError
from providers.emulator.seed import read_users, seed_users
from providers.emulator.server import EmulatorServer
from reconciler.clock import VirtualClock
from reconciler.errors import SourceError

GRAPH = "https://graph.microsoft.com/v1.0"


def build() -> Tenant:
    t = Tenant(seed=5)
    users = [t.add_user(f"u{i}@oak.example", employee_id=f"E{i}") for i in range(5)]
    ext = t.register_extension("aaaaaaaa-0000-0000-0000-000000000000", "tag")
    gid = t.add_group("g", owners=[users[0]], members=users[1:], extensions={ext: "x"})
    t.add_admin_unit("Oak", members=[users[0], gid], extensions={ext: "y"})
    t.add_team(gid, archived=True)
    return t


def test_save_load_roundtrip_is_stable(tmp_path: Path) -> None:
    t = build()
    path = tmp_path / "tenant.json"
    t.save(path)
    loaded = Tenant.load(path)
    again = tmp_path / "again.json"
    loaded.save(again)
    assert path.read_bytes() == again.read_bytes()
    gid = next(iter(loaded.groups))
    assert len(loaded.groups[gid].members) == 4 and loaded.teams[gid].archived
    http = httpx.Client(
        transport=EmulatorTransport(loaded, clock=VirtualClock()),
        base_url=GRAPH,
        headers={"Authorization": "Bearer t"},
    )
    assert (
        http.get("/users", params={"$filter": "employeeId eq 'E3'"}).json()["value"][0]["userPrincipalName"]
        == "u3@oak.example"
    )
    assert http.get(f"/teams/{gid}").json()["isArchived"] is True


def test_new_ids_after_reload_never_collide(tmp_path: Path) -> None:
    t = Tenant(seed=1)
    first = t.add_user("a@oak.example")
    t.save(tmp_path / "t.json")
    loaded = Tenant.load(tmp_path / "t.json")
    assert loaded.add_user("b@oak.example") != first


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("{", "not valid JSON"), ('{"format": "other"}', "not an emulator tenant file")],
)
def test_bad_tenant_file_errors_name_the_file(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TenantFileError) as info:
        Tenant.load(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_read_users_csv_and_json(tmp_path: Path) -> None:
    csv_file = tmp_path / "u.csv"
    csv_file.write_text("userPrincipalName,displayName,mail,employeeId\na@oak.example,Amy,,E1\n")
    json_file = tmp_path / "u.json"
    json_file.write_text(json.dumps([{"userPrincipalName": "b@oak.example", "mail": "b@oak.example"}]))
    users = read_users(csv_file) + read_users(json_file)
    assert [(u.user_principal_name, u.display_name, u.mail, u.employee_id) for u in users] == [
        ("a@oak.example", "Amy", None, "E1"),
        ("b@oak.example", None, "b@oak.example", None),
    ]
    t = Tenant()
    assert seed_users(t, users) == (2, 0) and seed_users(t, users) == (0, 2)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("u.csv", "name\nx\n", "line 1: no 'userPrincipalName' column"),
        ("u.csv", "userPrincipalName\ngood@oak.example\nnot-an-upn\n", "line 3, column 'userPrincipalName'"),
        ("u.json", '[{"userPrincipalName": "a@b.example", "shoe": 1}]', "unknown field(s) shoe"),
        ("u.json", "[{", "not valid JSON"),
    ],
)
def test_read_users_errors(tmp_path: Path, name: str, content: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SourceError) as info:
        read_users(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_server_serves_loopback_and_saves_after_writes(tmp_path: Path) -> None:
    state = tmp_path / "tenant.json"
    tenant = build()
    server = EmulatorServer(tenant, port=0, state_path=state)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/users").status_code == 401
            auth = {"Authorization": "Bearer anything"}
            r = http.get("/users", headers=auth, params={"$top": "2"})
            assert r.status_code == 200 and len(r.json()["value"]) == 2
            assert r.json()["@odata.nextLink"].startswith(server.url + "/users?")
            assert (
                http.post(
                    "/directory/administrativeUnits", headers=auth, json={"displayName": "New AU"}
                ).status_code
                == 201
            )
    finally:
        server.stop()
    saved = Tenant.load(state)
    assert sorted(a.props["displayName"] for a in saved.admin_units.values()) == ["New AU", "Oak"]


def test_cli_seed_then_reseed(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    users = tmp_path / "users.csv"
    users.write_text("userPrincipalName,displayName\na@oak.example,A\nb@oak.example,B\n")
    state = tmp_path / "tenant.json"
    r = run_cli("emulator", "seed", "--state", state, users)
    assert r.exit_code == 0 and "added 2 users" in r.stdout
    r = run_cli("emulator", "seed", "--state", state, users)
    assert r.exit_code == 0 and "skipped 2" in r.stdout
    assert len(Tenant.load(state).users) == 2


def test_cli_seed_bad_file_is_one_clear_error(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    users = tmp_path / "users.csv"
    users.write_text("email\nx@y.example\n")
    r = run_cli("emulator", "seed", "--state", tmp_path / "t.json", users)
    assert r.exit_code == 1 and "users.csv, line 1" in r.stderr and "userPrincipalName" in r.stderr
    assert not (tmp_path / "t.json").exists()


def test_cli_serve_runs_on_an_ephemeral_port_and_saves_on_shutdown(tmp_path: Path) -> None:
    import threading

    from entra_sync.cli.emulator import ProfileName, run_server

    state = tmp_path / "tenant.json"
    build().save(state)
    started = threading.Event()
    servers: list[EmulatorServer] = []

    def ready(server: EmulatorServer) -> None:
        servers.append(server)
        started.set()

    thread = threading.Thread(target=run_server, args=(state, 0, ProfileName.ideal, 0, ready), daemon=True)
    thread.start()
    assert started.wait(10)
    server = servers[0]
    try:
        with httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": "Bearer x"}) as http:
            r = http.post("/users", json={"userPrincipalName": "new@oak.example"})
            assert r.status_code == 201
    finally:
        server.shutdown()
        thread.join(10)
    assert not thread.is_alive()
    assert "new@oak.example" in {u.props["userPrincipalName"] for u in Tenant.load(state).users.values()}


def test_cli_serve_help_lists_options(run_cli: Callable[..., Any]) -> None:
    r = run_cli("emulator", "serve", "--help")
    assert r.exit_code == 0 and "--state" in r.stdout and "--profile" in r.stdout


def test_read_users_semicolon_csv_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes("\ufeffuserPrincipalName;displayName\r\na@oak.example;Amy\r\n".encode())
    assert [(u.user_principal_name, u.display_name) for u in read_users(path)] == [("a@oak.example", "Amy")]


def test_objects_from_a_later_clock_count_as_old(tmp_path: Path) -> None:
    from providers.emulator import Profile

    late = Tenant(clock=VirtualClock(start=2_000_000_000.0))
    owner = late.add_user("o@oak.example")
    late.add_group("g", owners=[owner], object_id="00000000-0000-4000-8000-000000000001")
    late.groups["00000000-0000-4000-8000-000000000001"].created = 2_000_000_000.0
    late.save(tmp_path / "t.json")
    tenant = Tenant.load(tmp_path / "t.json")
    transport = EmulatorTransport(
        tenant, clock=VirtualClock(), profile=Profile.realistic(seed=1).with_(faults=())
    )
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    assert len(http.get("/groups").json()["value"]) == 1
    assert http.put("/groups/00000000-0000-4000-8000-000000000001/team", json={}).status_code == 201


def _burst(server: EmulatorServer, n: int) -> None:
    with httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": "Bearer x"}) as http:
        for i in range(n):
            r = http.post("/users", json={"userPrincipalName": f"burst{i}@oak.example"})
            assert r.status_code == 201, r.text
        assert http.post("/users", json={"userPrincipalName": "bad"}).status_code == 400


def test_served_writes_are_batched_into_one_save_and_flushed_on_stop(tmp_path: Path) -> None:
    state = tmp_path / "tenant.json"
    build().save(state)
    before = state.read_text()
    server = EmulatorServer(Tenant.load(state), port=0, state_path=state, save_interval=600.0)
    server.start()
    try:
        _burst(server, 30)
        assert server.saves == 0 and state.read_text() == before  # gathered, not yet written
    finally:
        server.stop()
    assert server.saves == 1
    upns = {u.props["userPrincipalName"] for u in Tenant.load(state).users.values()}
    assert {f"burst{i}@oak.example" for i in range(30)} <= upns


def test_served_flush_saves_pending_writes_while_serving(tmp_path: Path) -> None:
    state = tmp_path / "tenant.json"
    server = EmulatorServer(build(), port=0, state_path=state, save_interval=600.0)
    server.start()
    try:
        _burst(server, 3)
        server.flush()
        assert server.saves == 1 and len(Tenant.load(state).users) == len(build().users) + 3
        server.flush()
        assert server.saves == 1  # nothing pending: no second write
    finally:
        server.stop()


def test_save_interval_zero_saves_after_every_write(tmp_path: Path) -> None:
    state = tmp_path / "tenant.json"
    server = EmulatorServer(build(), port=0, state_path=state, save_interval=0)
    server.start()
    try:
        _burst(server, 5)
        assert server.saves == 5  # the refused write saved nothing
    finally:
        server.stop()
