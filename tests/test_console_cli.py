"""``entra-sync console add-tenant / add-user / grant``: the first admin from the command line,
a broken configuration refused with the loader's message, and the user able to sign in."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_sync.console.security import check_password
from entra_sync.console.store import ConsoleStore
from tests.console_support import school

pytestmark = pytest.mark.usefixtures("clean_env")


def test_add_tenant_and_the_first_admin(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, _ = school(tmp_path / "oak")
    store = tmp_path / "console.db"
    r = run_cli("console", "--store", store, "add-tenant", "oak", "--config", cfg, "--name", "Oak Academy")
    assert r.exit_code == 0, r.stderr
    # the CLI's runs of this configuration go to its own history: said, with the way to share the store
    assert f"record their runs in {cfg.parent / 'history.sqlite'}, not in the console" in r.stderr
    assert f'set [history] path = "{store.resolve()}"' in r.stderr
    shared = cfg.parent / "history.sqlite"
    r = run_cli("console", "--store", shared, "add-tenant", "oak", "--config", cfg)
    assert r.exit_code == 0 and "note:" not in r.stderr, r.stderr
    monkeypatch.setenv("ENTRA_SYNC_CONSOLE_PASSWORD", "a password of some length")
    r = run_cli("console", "--store", store, "add-user", "ada", "--tenant", "oak", "--role", "admin")
    assert r.exit_code == 0 and "ada created, admin of oak" in r.stdout, r.stderr
    s = ConsoleStore(store)
    user = s.user("ada")
    assert user is not None and check_password(user.password_hash, "a password of some length")
    assert s.role(user.id, "oak") == "admin"
    assert "a password of some length" not in store.read_bytes().decode("latin-1")
    r = run_cli("console", "--store", store, "add-user", "ada")
    assert r.exit_code != 0 and "exists already" in r.stderr
    r = run_cli("console", "--store", store, "add-user", "bob", "--tenant", "nope")
    assert r.exit_code != 0 and "no tenant 'nope'" in r.stderr and s.user("bob") is None
    assert run_cli("console", "--store", store, "grant", "ada", "oak", "viewer").exit_code == 0
    assert s.role(user.id, "oak") == "viewer"
    s.close()


def test_a_broken_configuration_is_refused_with_the_loaders_message(run_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[schedule]\ntimes = ["25:00"]\n')
    r = run_cli("console", "--store", tmp_path / "c.db", "add-tenant", "oak", "--config", bad)
    assert r.exit_code != 0 and 'must be a 24-hour local time "HH:MM"' in r.stderr
    assert "Traceback" not in r.stderr


def test_the_trusted_proxies_are_a_setting(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(kw))
    store = tmp_path / "console.db"
    assert run_cli("console", "--store", store).exit_code == 0
    assert served[-1]["forwarded_allow_ips"] == ["127.0.0.1"] and served[-1]["proxy_headers"] is True
    r = run_cli("console", "--store", store, "--forwarded-allow-ips", "10.0.0.5, 192.168.0.0/24,::1")
    assert r.exit_code == 0 and "trusting X-Forwarded-For from 10.0.0.5, 192.168.0.0/24, ::1" in r.stderr
    assert served[-1]["forwarded_allow_ips"] == ["10.0.0.5", "192.168.0.0/24", "::1"]
    monkeypatch.setenv("ENTRA_SYNC_CONSOLE_FORWARDED_ALLOW_IPS", "*")
    assert run_cli("console", "--store", store).exit_code == 0
    assert served[-1]["forwarded_allow_ips"] == ["*"]
    r = run_cli("console", "--store", store, "--forwarded-allow-ips", "proxy.local")
    assert r.exit_code != 0 and "'proxy.local' is not an IP address or network" in r.stderr
    assert "--forwarded-allow-ips" in r.stderr and len(served) == 3
