"""How the CLI's log lines look: each starts with its time in ISO 8601 with the UTC offset; as text
(``--log-format text``, the default) or one JSON object per line (``--log-format json``: ``ts``,
``level``, ``logger``, ``message``, ``run`` when the line belongs to a recorded run, ``exception``).

Must not: let a secret through. Every line (message and traceback) is scrubbed of anything that
looks like a bearer token or a JWT, and of the value of every environment variable whose name
says it holds a secret (``ENTRA_SYNC_CLIENT_SECRET``, ``AZURE_CLIENT_SECRET``, a token, a password),
whoever logged it.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from entra_sync.runs.logcontext import RUN_ID
from providers.entra.errors import redact_secrets

__all__ = ["LogFormat", "LogFormatter", "configure_logging", "secret_values"]

_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|ASSERTION|PRIVATE_KEY|API_KEY", re.I)
#: shorter values are not searched for (they would blank ordinary words)
_MIN_SECRET = 6
_MARK = "_entra_sync_handler"


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of the environment variables whose names say they hold a secret, longest first
    (a ``..._FILE`` variable holds a path, not the secret)."""
    found = {v for k, v in environ.items()
             if _SECRET_NAME.search(k) and not k.endswith("_FILE") and len(v) >= _MIN_SECRET}
    return sorted(found, key=len, reverse=True)


class LogFormatter(logging.Formatter):
    def __init__(self, fmt: LogFormat = LogFormat.text, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._json = fmt is LogFormat.json
        self._secrets = tuple(secrets)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return redact_secrets(text)

    @staticmethod
    def timestamp(record: logging.LogRecord) -> str:
        return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        message = self._scrub(record.getMessage())
        exception = self._scrub(self.formatException(record.exc_info)) if record.exc_info else None
        run_id = getattr(record, "run_id", None)
        if run_id is None:
            run_id = RUN_ID.get()
        ts = self.timestamp(record)
        if self._json:
            doc: dict[str, Any] = {"ts": ts, "level": record.levelname, "logger": record.name,
                                   "message": message}
            if run_id is not None:
                doc["run"] = run_id
            if exception:
                doc["exception"] = exception
            return json.dumps(doc, ensure_ascii=False)
        run = f" [run {run_id}]" if run_id is not None else ""
        line = f"{ts} {record.levelname} {record.name}{run}: {message}"
        return f"{line}\n{exception}" if exception else line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: int, fmt: LogFormat = LogFormat.text) -> None:
    """One handler of ours on the root logger (replacing the one an earlier call put there), at
    ``level``; other handlers (a test's capture) are left alone."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    setattr(handler, _MARK, True)
    handler.setFormatter(LogFormatter(fmt, secret_values(os.environ)))
    root.addHandler(handler)
    root.setLevel(level)
