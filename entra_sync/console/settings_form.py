"""The Settings page's values: read from the tenant's TOML configuration, checked by the same
loader as the file (same messages), and written back as that configuration.

Must: write the file only when the whole new configuration passes the checks, atomically; keep
every key the page does not show. Must not: put a secret in the file (the secret typed in the page
is stored encrypted in the store; the file names the variable the run reads it from).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from entra_sync.config.load import ConfigFindingsError, loads_config
from reconciler.errors import ConfigError

__all__ = ["SECRET_ENV", "FormResult", "form_values", "save_form"]

SECRET_ENV = "ENTRA_SYNC_CLIENT_SECRET"
_BOOLS = ("groups", "administrative_units", "teams")
_FRACTIONS = ("max_delete_fraction", "max_member_removal_fraction")
_CREDENTIAL_KEYS = (
    "client_secret_env",
    "client_secret_file",
    "certificate_path",
    "certificate_password_env",
    "federated_token_file",
    "managed_identity",
    "access_token_env",
)


@dataclass(frozen=True)
class FormResult:
    ok: bool
    errors: tuple[str, ...] = ()


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(path)) from None


def form_values(path: Path) -> dict[str, Any]:
    """What the form shows (never a secret)."""
    doc = _read(path)
    tenant, sync = doc.get("tenant", {}), doc.get("sync", {})
    schedule, safety = doc.get("schedule", {}), doc.get("safety", {})
    return {
        "tenant_id": tenant.get("tenant_id", ""),
        "client_id": tenant.get("client_id", ""),
        **{k: bool(sync.get(k, k != "teams")) for k in _BOOLS},
        "teams_for": list(sync.get("teams_for", ["classes"])),
        "times": ", ".join(schedule.get("times", ["04:00", "08:00", "12:00"])),
        "timezone": schedule.get("timezone", "Europe/London"),
        "max_deletes": safety.get("max_deletes", ""),
        "max_delete_fraction": safety.get("max_delete_fraction", ""),
        "max_member_removal_fraction": safety.get("max_member_removal_fraction", ""),
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


def save_form(path: Path, form: Mapping[str, Any], *, secret_given: bool) -> FormResult:
    """Apply the form to the configuration at ``path``; write it when it passes the checks."""
    doc = _read(path)
    errors: list[str] = []
    tenant = doc.setdefault("tenant", {})
    for key in ("tenant_id", "client_id"):
        value = str(form.get(key, "")).strip()
        if value:
            tenant[key] = value
        else:
            tenant.pop(key, None)
    sync = doc.setdefault("sync", {})
    for key in _BOOLS:
        sync[key] = form.get(key) in ("on", "true", "1", True)
    sync["teams_for"] = [v for v in ("classes", "mentor_groups") if v in form.get("teams_for", ())]
    if not sync["teams_for"]:
        sync.pop("teams_for")
    schedule = doc.setdefault("schedule", {})
    schedule["times"] = [t.strip() for t in str(form.get("times", "")).split(",") if t.strip()]
    schedule["timezone"] = str(form.get("timezone", "")).strip()
    safety = doc.setdefault("safety", {})
    for key, kind in (("max_deletes", int), *((k, float) for k in _FRACTIONS)):
        value = _number(str(form.get(key, "")), f"safety.{key}", errors, kind)
        if value is None:
            safety.pop(key, None)
        else:
            safety[key] = value
    if secret_given:  # the run reads the secret the console stored from this variable
        creds = doc.setdefault("credentials", {})
        for key in _CREDENTIAL_KEYS:
            creds.pop(key, None)
        creds["client_secret_env"] = SECRET_ENV
    if errors:
        return FormResult(False, tuple(errors))
    text = tomli_w.dumps(doc)
    try:
        loads_config(text, file=path)
    except ConfigFindingsError as exc:
        return FormResult(False, tuple(str(f) for f in exc.findings))
    except ConfigError as exc:
        return FormResult(False, (str(exc),))
    _write(path, text)
    return FormResult(True)


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
