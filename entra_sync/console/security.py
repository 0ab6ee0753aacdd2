"""Passwords, secrets at rest and CSRF tokens for the console.

Must: hash passwords with argon2id (argon2-cffi); encrypt a client secret with Fernet under a key
from ``ENTRA_SYNC_CONSOLE_KEY`` or a key file (created 0600 when missing); compare tokens in
constant time. Must not: log, show or return a secret in clear except to the run that uses it.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

from reconciler.errors import ConfigError

__all__ = ["KEY_ENV", "SecretBox", "check_password", "hash_password", "new_token", "same_token"]

KEY_ENV = "ENTRA_SYNC_CONSOLE_KEY"
_HASHER = PasswordHasher()
#: a hash to verify against when the user does not exist (the same time either way)
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise ConfigError("a console password needs at least 12 characters", key="password")
    return _HASHER.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


class SecretBox:
    """Encrypts and decrypts the secrets typed in the console (Fernet: AES-128-CBC + HMAC)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                "the console key is not a Fernet key (32 url-safe base64 bytes); make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`",
                key=KEY_ENV,
            ) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str], key_file: Path) -> SecretBox:
        """The key in ``ENTRA_SYNC_CONSOLE_KEY``, else in ``key_file`` (made, 0600, when missing)."""
        if env.get(KEY_ENV):
            return cls(env[KEY_ENV].strip().encode())
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        return cls(key_file.read_bytes().strip())

    def key_id(self) -> bytes:
        """A value derived from the key (to derive the session key from; never the key itself)."""
        import hashlib

        return hashlib.sha256(b"entra-sync console key id:" + self._key).digest()

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigError(
                "the stored client secret cannot be decrypted with this console key; "
                "type the secret again in Settings",
                key=KEY_ENV,
            ) from None
