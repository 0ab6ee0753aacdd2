"""The Settings page's credential kinds (a client secret, a certificate, a managed identity, a
federated token file), checked by the configuration loader with its own messages and written as
references; the file's comments and layout kept; and the audit trail of who changed which fields."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from entra_sync.config.load import ConfigFindingsError, load_config
from tests.console_support import Setup, csrf, make_setup, sign_in

pytestmark = pytest.mark.usefixtures("clean_env")

SECRET = "s3cret-value-typed-once-8c1f"
CERT_GUID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = make_setup(tmp_path)
    s.user("ada", {"oak": "admin"})
    s.user("vic", {"oak": "viewer"})
    yield s
    s.jobs.wait()
    s.store.close()


def _admin(setup: Setup) -> TestClient:
    c = setup.client()
    assert sign_in(c, "ada") == 303
    return c


def _form(c: TestClient, **changes: Any) -> dict[str, Any]:
    """The form as the page shows it, with ``changes``."""
    base = {
        "csrf": csrf(c, "/t/oak/settings"),
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "00000000-0000-4000-8000-00000000d3e0",
        "groups": "on",
        "administrative_units": "on",
        "times": "04:00, 08:00, 12:00",
        "timezone": "Europe/London",
    }
    return {**base, **changes}


def _text(html: str) -> str:
    return html.replace("&#34;", '"').replace("&#39;", "'").replace("&quot;", '"')


def _loader_says(tmp_path: Path, credentials: str) -> list[str]:
    """What `entra-sync validate` (the loader) says about this [credentials] section."""
    f = tmp_path / "check.toml"
    f.write_text(f"[credentials]\n{credentials}\n")
    with pytest.raises(ConfigFindingsError) as info:
        load_config(f)
    return [str(x) for x in info.value.findings]


def test_the_files_comments_and_layout_are_kept(setup: Setup) -> None:
    t = setup.store.tenant("oak")
    assert t is not None
    commented = (
        "# Oak Academy's sync: owned by the trust's IT team\n\n"
        + t.config_path.read_text().replace("[sync]\n", "[sync]\n# Teams come in September\n")
        + '\n[schedule]\n# before school, at lunch\ntimes = ["04:00", "08:00", "12:00"]   # local time\n'
    )
    t.config_path.write_text(commented)
    c = _admin(setup)
    assert c.post("/t/oak/settings", data=_form(c, times="05:30, 12:00")).status_code == 303
    after = t.config_path.read_text()
    diff = [d for d in difflib.ndiff(commented.splitlines(), after.splitlines()) if d[:1] in "+-"]
    assert diff == [
        '- times = ["04:00", "08:00", "12:00"]   # local time',
        '+ times = ["05:30", "12:00"]   # local time',
    ]
    # saving again without a change leaves the file alone and records nothing
    assert c.post("/t/oak/settings", data=_form(c, times="05:30, 12:00")).status_code == 303
    assert t.config_path.read_text() == after
    assert [ch.fields for ch in setup.store.settings_changes("oak")] == [("schedule.times",)]


def test_each_credential_kind_is_checked_by_the_loader_and_written_as_a_reference(
    setup: Setup, tmp_path: Path
) -> None:
    t = setup.store.tenant("oak")
    assert t is not None
    c = _admin(setup)
    # a client secret: stored encrypted, the file names the variable only
    assert (
        c.post(
            "/t/oak/settings", data=_form(c, credential_kind="client_secret", client_secret=SECRET)
        ).status_code
        == 303
    )
    cfg = load_config(t.config_path)
    assert (
        cfg.credentials.method == "client_secret_env"
        and cfg.credentials.client_secret_env == "ENTRA_SYNC_CLIENT_SECRET"
    )
    assert setup.store.tenant("oak").has_secret  # type: ignore[union-attr]
    assert SECRET not in t.config_path.read_text() and SECRET not in c.get("/t/oak/settings").text

    # a certificate: a path is needed (the loader's own message), then written as a reference
    r = c.post("/t/oak/settings", data=_form(c, credential_kind="certificate", certificate_path=""))
    assert r.status_code == 400 and "credentials.certificate_path: must not be empty" in _text(r.text)
    assert _loader_says(tmp_path, 'certificate_path = ""') == [
        "credentials.certificate_path: must not be empty"
    ]
    assert load_config(t.config_path).credentials.method == "client_secret_env"  # untouched
    r = c.post(
        "/t/oak/settings",
        data=_form(
            c,
            credential_kind="certificate",
            certificate_path="/etc/entra-sync/app.pem",
            certificate_password_env="CERT_PASSWORD",
        ),
    )
    assert r.status_code == 303
    cfg = load_config(t.config_path)
    assert cfg.credentials.method == "certificate" and cfg.credentials.certificate_path == Path(
        "/etc/entra-sync/app.pem"
    )
    assert (
        cfg.credentials.certificate_password_env == "CERT_PASSWORD"
        and cfg.credentials.client_secret_env is None
    )
    assert not setup.store.tenant("oak").has_secret  # type: ignore[union-attr]  # the secret is forgotten
    page = c.get("/t/oak/settings").text
    assert 'id="kind-certificate" checked' in page and 'value="/etc/entra-sync/app.pem"' in page

    # a managed identity: "system" or a GUID, with the loader's message for anything else
    r = c.post(
        "/t/oak/settings", data=_form(c, credential_kind="managed_identity", managed_identity="my-identity")
    )
    expected = _loader_says(tmp_path, 'managed_identity = "my-identity"')
    assert r.status_code == 400 and expected and all(e in _text(r.text) for e in expected)
    assert (
        c.post(
            "/t/oak/settings", data=_form(c, credential_kind="managed_identity", managed_identity=CERT_GUID)
        ).status_code
        == 303
    )
    cfg = load_config(t.config_path)
    assert cfg.credentials.method == "managed_identity" and cfg.credentials.managed_identity == CERT_GUID
    assert cfg.credentials.certificate_path is None and cfg.credentials.certificate_password_env is None

    # a federated token file
    r = c.post(
        "/t/oak/settings", data=_form(c, credential_kind="federated", federated_token_file="/var/run/token")
    )
    assert r.status_code == 303
    cfg = load_config(t.config_path)
    assert cfg.credentials.method == "federated_token_file" and cfg.credentials.federated_token_file == Path(
        "/var/run/token"
    )

    # back to a client secret: it has to be typed
    r = c.post("/t/oak/settings", data=_form(c, credential_kind="client_secret"))
    assert r.status_code == 400 and "credentials.client_secret: type the client secret" in _text(r.text)
    assert load_config(t.config_path).credentials.method == "federated_token_file"


def test_the_audit_trail_says_who_changed_which_fields_never_a_value(setup: Setup) -> None:
    c = _admin(setup)
    assert (
        c.post(
            "/t/oak/settings",
            data=_form(
                c,
                credential_kind="client_secret",
                client_secret=SECRET,
                max_deletes="40",
                require_other_approver="on",
            ),
        ).status_code
        == 303
    )
    assert (
        c.post(
            "/t/oak/settings",
            data=_form(
                c,
                credential_kind="managed_identity",
                managed_identity="system",
                max_deletes="40",
                require_other_approver="on",
            ),
        ).status_code
        == 303
    )
    changes = setup.store.settings_changes("oak")
    assert [(ch.username, ch.fields) for ch in changes] == [
        (
            "ada",
            ("credentials.client_secret_env", "credentials.managed_identity", "credentials.client_secret"),
        ),
        (
            "ada",
            (
                "credentials.client_secret_env",
                "safety.max_deletes",
                "credentials.client_secret",
                "console.require_other_approver",
            ),
        ),
    ]
    page = c.get("/t/oak/settings").text
    table = page[page.index('id="audit"') :]
    assert "ada" in table and "safety.max_deletes" in table and "credentials.managed_identity" in table
    assert SECRET not in page
    with setup.store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM console_settings_changes").all()
    assert rows and SECRET not in repr(rows) and "40" not in repr([r[-1] for r in rows])
    # only admins see the settings (and so the trail)
    viewer = setup.client()
    assert sign_in(viewer, "vic") == 303
    assert viewer.get("/t/oak/settings").status_code == 403
