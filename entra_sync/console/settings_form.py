"""The Settings page's values: read from the tenant's TOML configuration, checked by the same
loader as the file (same messages), and written back as that configuration.

The credential is one of: a client secret (typed once in the page, stored encrypted in the store;
the file names only the variable the run is handed it in), a certificate (a file path, and the
variable holding its password if it has one), a managed identity (``system`` or a user-assigned
identity's client id) or a federated token file (workload identity federation). A file that signs
in some other way (``access_token_env``, or a client secret in a variable or file of its own) keeps
it until another kind is chosen.

Must: write the file only when the whole new configuration passes the checks, atomically; change
only the keys whose value changed (tomlkit: every comment, blank line and key the page does not
show stays as it was); say which fields changed (for the audit trail; names, never values). Must
not: put a secret in the file.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Table
from tomlkit.toml_document import TOMLDocument

from entra_sync.config.load import ConfigFindingsError, loads_config
from reconciler.errors import ConfigError
from reconciler.settings import SafetyConfig

__all__ = ["CREDENTIAL_KINDS", "SECRET_ENV", "FormResult", "credential_kind", "form_values", "save_form"]

SECRET_ENV = "ENTRA_SYNC_CLIENT_SECRET"
_BOOLS = {"groups": True, "administrative_units": True, "teams": False}
_FRACTIONS = ("max_delete_fraction", "max_member_removal_fraction")
_TIMES = ["04:00", "08:00", "12:00"]
_TIMEZONE = "Europe/London"
#: the ways to sign in the page offers; "other": as the file says (kept)
CREDENTIAL_KINDS = ("client_secret", "certificate", "managed_identity", "federated", "other")
#: each kind's keys in [credentials], as the page's fields name them
_KIND_KEYS = {
    "client_secret": ("client_secret_env", "client_secret_file"),
    "certificate": ("certificate_path", "certificate_password_env"),
    "managed_identity": ("managed_identity",),
    "federated": ("federated_token_file",),
    "other": ("access_token_env",),
}


@dataclass(frozen=True)
class FormResult:
    ok: bool
    errors: tuple[str, ...] = ()
    #: the fields that changed ("schedule.times", "credentials.certificate_path", ...)
    changed: tuple[str, ...] = ()
    #: the stored client secret is no longer used (another kind was chosen): forget it
    drop_secret: bool = False


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(path)) from None


def credential_kind(creds: Mapping[str, Any]) -> str:
    """The page's kind of the file's ``[credentials]`` ("": none yet)."""
    for kind, keys in _KIND_KEYS.items():
        if any(k in creds for k in keys if k != "certificate_password_env"):
            return kind
    return ""


def form_values(path: Path) -> dict[str, Any]:
    """What the form shows (never a secret: variable names and file paths are references)."""
    doc = _read(path)
    tenant, sync = doc.get("tenant", {}), doc.get("sync", {})
    schedule, safety = doc.get("schedule", {}), doc.get("safety", {})
    creds = doc.get("credentials", {})
    kind = credential_kind(creds)
    own_secret = creds.get("client_secret_env") == SECRET_ENV
    return {
        "tenant_id": tenant.get("tenant_id", ""),
        "client_id": tenant.get("client_id", ""),
        "credential_kind": kind or "client_secret",
        #: the file's own client secret reference (a variable or file the console did not set)
        "secret_reference": ""
        if kind != "client_secret" or own_secret
        else (
            f"variable {creds['client_secret_env']}"
            if "client_secret_env" in creds
            else f"file {creds.get('client_secret_file', '')}"
        ),
        "other_reference": f"variable {creds.get('access_token_env', '')}" if kind == "other" else "",
        "certificate_path": creds.get("certificate_path", ""),
        "certificate_password_env": creds.get("certificate_password_env", ""),
        "managed_identity": creds.get("managed_identity", "system"),
        "federated_token_file": creds.get("federated_token_file", ""),
        **{k: bool(sync.get(k, d)) for k, d in _BOOLS.items()},
        "teams_for": list(sync.get("teams_for", ["classes"])),
        "times": ", ".join(schedule.get("times", _TIMES)),
        "timezone": schedule.get("timezone", _TIMEZONE),
        "max_deletes": safety.get("max_deletes", ""),
        "max_delete_fraction": safety.get("max_delete_fraction", ""),
        "max_member_removal_fraction": safety.get("max_member_removal_fraction", ""),
        "defaults": {k: getattr(SafetyConfig(), k) for k in ("max_deletes", *_FRACTIONS)},
    }


def _number(value: str, path: str, errors: list[str], kind: type) -> Any:
    v = value.strip()
    if not v:
        return None
    try:
        return kind(v)
    except ValueError:
        errors.append(f"{path}: expected {'an integer' if kind is int else 'a number'}, got {v!r}")
        return None


class _Edits:
    """Changes to a tomlkit document, key by key, noting the fields that changed."""

    def __init__(self, doc: TOMLDocument) -> None:
        self.doc = doc
        self.changed: list[str] = []

    def _table(self, name: str, create: bool) -> Table | None:
        if name not in self.doc:
            if not create:
                return None
            self.doc[name] = tomlkit.table()
        table = self.doc[name]
        assert isinstance(table, Table)
        return table

    def current(self, name: str, key: str) -> Any:
        table = self._table(name, False)
        if table is None or key not in table:
            return None
        value = table[key]
        return value.unwrap() if hasattr(value, "unwrap") else value

    def set(self, name: str, key: str, value: Any, default: Any = None) -> None:
        """``name.key = value`` (absent when ``value`` is None, or is the default and was absent)."""
        old = self.current(name, key)
        if value is None or (old is None and value == default):
            self.drop(name, key)
        elif old != value:
            table = self._table(name, True)
            assert table is not None
            table[key] = value
            self.changed.append(f"{name}.{key}")

    def drop(self, name: str, key: str) -> None:
        table = self._table(name, False)
        if table is not None and key in table:
            del table[key]
            self.changed.append(f"{name}.{key}")


def _credentials(
    e: _Edits, form: Mapping[str, Any], secret_given: bool, errors: list[str]
) -> tuple[str, str] | None:
    """Apply the chosen credential kind; (the kind before, the kind after), or None on a fault."""
    before = credential_kind(dict(e.doc.get("credentials") or {}))
    kind = str(form.get("credential_kind") or before or "client_secret")
    if kind not in CREDENTIAL_KINDS:
        errors.append(f"credentials: choose one of {', '.join(CREDENTIAL_KINDS)}, got {kind!r}")
        return None
    wanted: dict[str, str | None]
    if kind == "client_secret":
        if not secret_given:  # unchanged: the file's own reference, the stored secret, or none yet
            if before not in ("client_secret", ""):
                errors.append(
                    "credentials.client_secret: type the client secret (it is stored encrypted; the file "
                    f"names only the variable {SECRET_ENV} the run is handed it in)"
                )
            return before, kind
        wanted = {"client_secret_env": SECRET_ENV}
    elif kind == "other":
        return before, before  # as the file says
    elif kind == "certificate":
        wanted = {
            "certificate_path": str(form.get("certificate_path", "")).strip(),
            "certificate_password_env": str(form.get("certificate_password_env", "")).strip() or None,
        }
    elif kind == "managed_identity":
        wanted = {"managed_identity": str(form.get("managed_identity", "")).strip()}
    else:
        wanted = {"federated_token_file": str(form.get("federated_token_file", "")).strip()}
    for keys in _KIND_KEYS.values():
        for key in keys:
            e.set("credentials", key, wanted.get(key))
    return before, kind


def save_form(path: Path, form: Mapping[str, Any], *, secret_given: bool) -> FormResult:
    """Apply the form to the configuration at ``path``; write it when it passes the checks."""
    try:
        text = path.read_text(encoding="utf-8")
        doc = tomlkit.parse(text)
    except FileNotFoundError:
        text, doc = "", tomlkit.document()
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(path)) from None
    e = _Edits(doc)
    errors: list[str] = []
    for key in ("tenant_id", "client_id"):
        e.set("tenant", key, str(form.get(key, "")).strip() or None)
    kinds = _credentials(e, form, secret_given, errors)
    for key, default in _BOOLS.items():
        e.set("sync", key, form.get(key) in ("on", "true", "1", True), default)
    teams_for = [v for v in ("classes", "mentor_groups") if v in form.get("teams_for", ())]
    e.set("sync", "teams_for", teams_for or None, ["classes"])
    times = [t.strip() for t in str(form.get("times", "")).split(",") if t.strip()]
    e.set("schedule", "times", times, _TIMES)
    e.set("schedule", "timezone", str(form.get("timezone", "")).strip(), _TIMEZONE)
    for key, kind in (("max_deletes", int), *((k, float) for k in _FRACTIONS)):
        e.set("safety", key, _number(str(form.get(key, "")), f"safety.{key}", errors, kind))
    if errors or kinds is None:
        return FormResult(False, tuple(errors))
    new_text = tomlkit.dumps(doc)
    try:
        loads_config(new_text, file=path)
    except ConfigFindingsError as exc:
        return FormResult(False, tuple(str(f) for f in exc.findings))
    except ConfigError as exc:
        return FormResult(False, (str(exc),))
    changed = list(dict.fromkeys(e.changed))
    if secret_given and kinds[1] == "client_secret":
        changed.append("credentials.client_secret")
    if new_text != text:
        _write(path, new_text)
    return FormResult(True, changed=tuple(changed), drop_secret=kinds[1] != "client_secret")


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
