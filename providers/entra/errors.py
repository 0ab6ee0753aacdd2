"""Errors raised by the Graph client and the Entra provider.

    reconciler.errors.DirectoryError
    ├── GraphError              Graph answered with an error status (status, code, request_id, ...)
    │   ├── BadRequestError     400
    │   ├── UnauthorizedError   401 (after one token refresh)
    │   ├── ForbiddenError      403 (usually a missing application permission)
    │   ├── NotFoundError       404
    │   ├── ConflictError       409 (and 412)
    │   ├── ThrottledError      429/503 after the retry budget ran out
    │   └── ServerError         5xx
    ├── GraphTransportError     no response at all (timeout, dropped connection)
    │   └── ResponseLostError   a non-idempotent request (POST) whose outcome is unknown
    │       └── RefusedWriteError   a POST answered 429/503 (Graph may still have applied it)
    ├── GraphUnavailableError   the run stops early: Graph is in an outage or failing too often
    │   ├── CircuitOpenError    too many outage answers in a row (the circuit breaker opened)
    │   └── RetryBudgetExhaustedError  the run-wide retry budget is spent
    ├── MalformedResponseError  a 2xx answer that is not what Graph documents (no ``value`` array, ...)
    └── AuthError               authentication failed (MSAL error code and description)

Every message is built from the attributes only: status, Graph error code and message, request id,
method and path (query string dropped). Never from headers, tokens, request bodies or secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.errors import DirectoryError

__all__ = [
    "AuthError",
    "BadRequestError",
    "CircuitOpenError",
    "ConflictError",
    "ForbiddenError",
    "GraphError",
    "GraphTransportError",
    "GraphUnavailableError",
    "MalformedResponseError",
    "NotFoundError",
    "RefusedWriteError",
    "ResponseLostError",
    "RetryBudgetExhaustedError",
    "ServerError",
    "ThrottledError",
    "UnauthorizedError",
    "UnexpectedResponseError",
    "answer_detail",
    "error_class_for_status",
    "error_from_response",
    "page_items",
    "permission_for",
    "redact_path",
    "redact_secrets",
]

_MAX_MESSAGE = 500
# Anything that looks like a bearer token or JWT is cut out of Graph's own messages, just in case.
_SECRETISH = re.compile(r"(eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-.]*|Bearer\s+\S+)", re.IGNORECASE)


def redact_path(path: str) -> str:
    """The path of a URL with the query string dropped (values may hold e-mail addresses or keys).

    Must keep the route (``/groups/{id}/members``); must not keep query values. Full URLs
    (nextLinks) are reduced to their path.
    """
    p = path.split("?", 1)[0].split("#", 1)[0]
    m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://[^/]*(/.*)?$", p)
    if m:
        p = m.group(1) or "/"
    return p


def redact_secrets(text: str) -> str:
    """``text`` with anything that looks like a bearer token or a JWT replaced by ``[redacted]``."""
    return _SECRETISH.sub("[redacted]", text)


def _clean(text: str) -> str:
    text = redact_secrets(text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class GraphError(DirectoryError):
    """Graph answered with an error status. Attributes carry the data; the message is built from them."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str | None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = _clean(message) if message else None
        self.request_id = request_id
        self.method = method.upper() if method else None
        self.path = redact_path(path) if path else None
        super().__init__(self._render())

    def _render(self) -> str:
        where = " ".join(p for p in (self.method, self.path) if p)
        head = f"{where}: " if where else ""
        text = f"{head}Graph returned {self.status}"
        if self.code:
            text += f" {self.code}"
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" (request-id {self.request_id})"
        hint = self.hint()
        if hint:
            text += f". {hint}"
        return text

    def hint(self) -> str:
        """What the user can do about it; empty when nothing specific is known."""
        return ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (self.status, self.code, self.message, self.request_id, self.method, self.path),
        )


class BadRequestError(GraphError):
    pass


class UnauthorizedError(GraphError):
    def hint(self) -> str:
        return "Check the tenant id, client id and credential (the token was refreshed once)"


def permission_for(method: str | None, path: str | None) -> str | None:
    """The least-privilege application permission a request needs (graph-facts.md §10), or None.

    ``path`` is relative to the version root (``/groups/{id}/members/$ref``); a full URL is reduced
    to its path first, and a leading ``/v1.0`` or ``/beta`` is dropped.
    """
    if not path:
        return None
    segs = [s for s in redact_path(path).split("/") if s]
    if segs and segs[0] in ("v1.0", "beta"):
        segs = segs[1:]
    if not segs:
        return None
    read = (method or "GET").upper() in ("GET", "HEAD")
    top = segs[0].split("(", 1)[0]
    if top == "users":
        return "User.Read.All"
    if top == "directory" and len(segs) > 1 and segs[1].startswith("administrativeUnits"):
        return "AdministrativeUnit.Read.All" if read else "AdministrativeUnit.ReadWrite.All"
    if top == "groups":
        rel = segs[2] if len(segs) > 2 else ""
        if rel == "members":
            return "GroupMember.Read.All" if read else "GroupMember.ReadWrite.All"
        if read:
            return "GroupMember.Read.All"
        if len(segs) == 1 and (method or "").upper() == "POST":
            return "Group.Create"
        return "Group.ReadWrite.All"
    if top == "teams":
        return "Team.Create" if len(segs) == 1 else "TeamSettings.ReadWrite.All"
    if top == "applications":
        return "Application.ReadWrite.OwnedBy"
    return None


class ForbiddenError(GraphError):
    def hint(self) -> str:
        needed = permission_for(self.method, self.path)
        if needed is None:
            return "The app probably lacks an application permission; see docs/permissions.md"
        text = (
            f"The app probably lacks the application permission {needed} (or one that covers it), "
            "granted with admin consent; see docs/permissions.md"
        )
        if self.path and self.method in (None, "GET") and self.path.endswith("/members"):
            text += ". Members of a HiddenMembership group or AU also need Member.Read.Hidden"
        elif self.path and "/members" in self.path:
            text += (
                ". If it has it, the group may be role-assignable or mail-enabled, which Graph does "
                "not let an app manage"
            )
        return text


class NotFoundError(GraphError):
    pass


class ConflictError(GraphError):
    pass


class ThrottledError(GraphError):
    def hint(self) -> str:
        return "Graph kept throttling past the retry budget; run again later or lower the concurrency"


class ServerError(GraphError):
    pass


class UnexpectedResponseError(GraphError):
    """A status outside what Graph documents (e.g. 3xx, 418)."""


class GraphTransportError(DirectoryError):
    """No response was received (timeout, refused or dropped connection)."""

    def __init__(self, method: str, path: str, reason: str) -> None:
        self.method = method.upper()
        self.path = redact_path(path)
        self.reason = _clean(reason)
        super().__init__(self._render())

    def _render(self) -> str:
        return f"{self.method} {self.path}: no response from Graph ({self.reason})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.method, self.path, self.reason))


class ResponseLostError(GraphTransportError):
    """A non-idempotent request (POST) was sent but its outcome is unknown.

    The caller must look for the object (e.g. by its ownership marker) before trying again: a blind
    retry could create a duplicate.
    """

    def _render(self) -> str:
        return (
            f"{self.method} {self.path}: the response was lost ({self.reason}); the request may or may "
            "not have taken effect, look for the object before retrying"
        )


class RefusedWriteError(ResponseLostError):
    """A non-idempotent request (POST) answered 429 or 503; the client has already waited.

    Graph may still have applied a throttled write (graph-facts.md §4, §5), so the caller must look
    for the object before sending it again, exactly as for a lost response.
    """

    def _render(self) -> str:
        return (
            f"{self.method} {self.path}: Graph refused the request ({self.reason}) but may still have "
            "applied it; look for the object before retrying"
        )


class GraphUnavailableError(DirectoryError):
    """Graph is unavailable or failing too often: the run stops early instead of retrying each change.

    Raised by the client's run-wide policy (:mod:`providers.entra.retry`); once raised, every later
    request of the run raises it again without being sent, so the pipeline can record the run as
    stopped and say why.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason,))


class CircuitOpenError(GraphUnavailableError):
    """The circuit breaker is open: too many requests in a row got an outage answer."""


class RetryBudgetExhaustedError(GraphUnavailableError):
    """The run-wide retry budget is spent."""


class MalformedResponseError(DirectoryError):
    """Graph answered 2xx with a body that is not what it documents (e.g. a collection without a
    ``value`` array, a null item, an item without an id). Never read as an empty list: the read stops."""

    def __init__(self, method: str, path: str, what: str) -> None:
        self.method = method.upper()
        self.path = redact_path(path)
        self.what = _clean(what)
        super().__init__(
            f"{self.method} {self.path}: Graph's answer is malformed ({self.what}); the read stops "
            "rather than take it as empty. Run again; if it persists, report the request"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.method, self.path, self.what))


class AuthError(DirectoryError):
    """Authentication failed. Names the tenant and client and MSAL's error, never the secret or token."""

    def __init__(
        self,
        message: str,
        *,
        tenant_id: str | None = None,
        client_id: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.error = error
        self.error_description = _clean(error_description) if error_description else None
        parts = [message]
        ids = ", ".join(f"{k} {v}" for k, v in (("tenant", tenant_id), ("client", client_id)) if v)
        if ids:
            parts[0] += f" ({ids})"
        if error:
            parts.append(f"{error}: {self.error_description}" if self.error_description else error)
        text = ": ".join(parts)
        if hint:
            text += f"; {hint}"
        super().__init__(text)
        self.base_message = message
        self.hint = hint

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_auth_error,
            (
                self.base_message,
                self.tenant_id,
                self.client_id,
                self.error,
                self.error_description,
                self.hint,
            ),
        )


def _rebuild_auth_error(
    message: str,
    tenant_id: str | None,
    client_id: str | None,
    error: str | None,
    desc: str | None,
    hint: str | None = None,
) -> AuthError:
    return AuthError(
        message, tenant_id=tenant_id, client_id=client_id, error=error, error_description=desc, hint=hint
    )


_BY_STATUS: dict[int, type[GraphError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    412: ConflictError,
    429: ThrottledError,
}


def error_class_for_status(status: int) -> type[GraphError]:
    """The exception class for an HTTP status (5xx -> ServerError, other 4xx -> GraphError)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return GraphError
    return UnexpectedResponseError


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    lname = name.lower()
    for k, v in headers.items():
        if k.lower() == lname:
            return v
    return None


def error_from_response(
    status: int,
    headers: Mapping[str, str] | None,
    body: Any,
    method: str | None,
    path: str | None,
) -> GraphError:
    """Build the typed error for a Graph error response (a whole response or one ``$batch`` item).

    Reads ``error.code``, ``error.message`` and the request id (``error.innerError.request-id``, else
    the ``request-id`` / ``client-request-id`` header). Must not copy headers or the body into the message.
    """
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            c = err.get("code")
            m = err.get("message")
            code = c if isinstance(c, str) else None
            message = m if isinstance(m, str) else None
            inner = err.get("innerError") or err.get("innererror")
            if isinstance(inner, Mapping):
                rid = inner.get("request-id") or inner.get("requestId")
                request_id = rid if isinstance(rid, str) else None
    if request_id is None:
        request_id = _header(headers, "request-id") or _header(headers, "client-request-id")
    return error_class_for_status(status)(status, code, message, request_id, method, path)


def page_items(page: Any, method: str, path: str) -> list[dict[str, Any]]:
    """The items of one collection page, checked: the page must be an object with a ``value`` array
    of objects, each with a non-empty string ``id``. Anything else is a
    :class:`MalformedResponseError` (a ``{}`` answer must never read as "no objects")."""
    if not isinstance(page, Mapping):
        raise MalformedResponseError(method, path, "a collection page that is not a JSON object")
    value = page.get("value")
    if not isinstance(value, list):
        raise MalformedResponseError(method, path, "a collection without a 'value' array")
    for n, item in enumerate(value):
        if not isinstance(item, dict):
            raise MalformedResponseError(method, path, f"item {n} is {type(item).__name__}, not an object")
        oid = item.get("id")
        if not isinstance(oid, str) or not oid:
            raise MalformedResponseError(method, path, f"item {n} has no string 'id'")
    link = page.get("@odata.nextLink")
    if link is not None and not isinstance(link, str):
        raise MalformedResponseError(method, path, "'@odata.nextLink' is not a string")
    return value


def answer_detail(status: int, headers: Mapping[str, str], body: Any, method: str, url: str) -> str:
    """A short description of an error answer for a message: status, code, request id."""
    err = error_from_response(status, headers, body, method, url)
    detail = f"Graph answered {status}" + (f" {err.code}" if err.code else "")
    if err.request_id:
        detail += f", request-id {err.request_id}"
    return detail
