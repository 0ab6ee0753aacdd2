"""The one rule for a Graph base URL: https, or plain http to a loopback address only.

Used for every way a URL can be given: ``--graph-url``, ``ENTRA_SYNC_GRAPH_URL`` and the
configuration's ``[tenant] graph_url`` (and again by :class:`providers.entra.connect.ConnectionSettings`),
so the access token never travels over plain http to another machine.

Loopback means an IP literal in 127.0.0.0/8 or ``::1`` (also IPv4-mapped, ``::ffff:127.0.0.1``),
or the name ``localhost``. A name that merely starts with ``127.`` (``127.0.0.1.nip.io``) is a DNS
name like any other and resolves wherever its owner wants: refused.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["graph_url_problem", "is_loopback_host", "redact_url"]


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a URL's hostname, without brackets) is a loopback address or ``localhost``."""
    host = host.strip().lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def graph_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a Graph base URL, or None when it is acceptable.

    The ``emulator:FILE`` form (the in-process emulator) is not a URL and is not checked here.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http(s) URL such as https://graph.microsoft.com"
    if parts.username or parts.password or parts.query or parts.fragment:
        return "must be a base URL without credentials, query or fragment"
    if parts.scheme == "http" and not is_loopback_host(host):
        return (
            "must use https:// (plain http:// is allowed only for a local emulator on a loopback "
            "address: 127.0.0.1, ::1 or localhost)"
        )
    return None


def redact_url(url: str) -> str:
    """``url`` for a message: any user:password part and the query are dropped."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    if not parts.scheme or not host:
        return repr(url.split("@")[-1].split("?")[0][:200])
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}{port}{parts.path}"
