"""Shared set-up for the console's tests: a school on the in-process emulator (the example export,
its people as users), a console store with tenants and users, and a signed-in TestClient."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from starlette.testclient import TestClient

from entra_sync.cli.running import render_config
from entra_sync.cli.wiring import DEMO_CLIENT_ID
from entra_sync.config.load import load_config
from entra_sync.console.app import create_app
from entra_sync.console.jobs import Jobs
from entra_sync.console.security import SecretBox, hash_password
from entra_sync.console.store import ConsoleStore, Role
from providers.emulator import Tenant
from providers.emulator.seed import SeedUser, seed_users
from providers.sources import example_export_path

PASSWORD = "correct horse battery staple"
KEY = Fernet.generate_key()


def school(d: Path, *, teams: bool = False, missing: int = 0) -> tuple[Path, list[str]]:
    """A school's configuration over an in-process emulator tenant file, every person but the last
    ``missing`` seeded as a user; returns the configuration's path and the people left out."""
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(example_export_path(), d / "realsmart-export.json")
    cfg = d / "entra-sync.toml"
    cfg.write_text(
        f'[tenant]\ntenant_id = "contoso.onmicrosoft.com"\nclient_id = "{DEMO_CLIENT_ID}"\n'
        'graph_url = "emulator:tenant.json"\n'
        '[source]\nkind = "realsmart"\npath = "realsmart-export.json"\n[history]\npath = "history.sqlite"\n'
        f"[sync]\nteams = {'true' if teams else 'false'}\n"
    )
    tenant = Tenant()
    people = sorted(render_config(load_config(cfg)).desired.people())
    kept = people[: len(people) - missing]
    seed_users(tenant, [SeedUser(ref) for ref in kept])
    tenant.save(d / "tenant.json")
    return cfg, people[len(kept) :]


def drop_classes(cfg: Path, keep: int) -> None:
    """Keep only the first ``keep`` classes of the school's export (the next plan deletes the rest)."""
    export = cfg.parent / "realsmart-export.json"
    doc = json.loads(export.read_text())
    doc["classes"] = doc["classes"][:keep]
    export.write_text(json.dumps(doc))


@dataclass
class Setup:
    store: ConsoleStore
    box: SecretBox
    jobs: Jobs
    root: Path
    #: per tenant, the people who have no account in its emulator tenant
    missing: dict[str, list[str]]

    def user(self, name: str, roles: dict[str, Role]) -> int:
        uid = self.store.add_user(name, hash_password(PASSWORD))
        for slug, role in roles.items():
            self.store.grant(uid, slug, role)
        return uid

    def client(self) -> TestClient:
        return TestClient(
            create_app(self.store, self.box, session_secret="s" * 32, jobs=self.jobs), follow_redirects=False
        )


def make_setup(root: Path, target: str | None = None, *, missing: int = 0) -> Setup:
    store = ConsoleStore(target or root / "console.db")
    box = SecretBox(KEY)
    left_out = {}
    for slug in ("oak", "elm"):
        cfg, left_out[slug] = school(root / slug, missing=missing)
        store.add_tenant(slug, f"{slug.title()} Academy", cfg)
    return Setup(store, box, Jobs(store, box, env={}), root, left_out)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m is not None, "no CSRF token in the page"
    return m.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> int:
    page = client.get("/login")
    r = client.post("/login", data={"username": name, "password": password, "csrf": csrf_of(page.text)})
    return r.status_code


def csrf(client: TestClient, path: str = "/") -> str:
    return csrf_of(client.get(path).text)
