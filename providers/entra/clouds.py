"""National clouds: the sign-in authority and the Graph endpoint always go together (graph-facts.md §9).

A token from one cloud does not work in another, so a cloud is chosen once and both values come
from it; the token scope is ``{graph_endpoint}/.default``.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.errors import ConfigError

__all__ = ["CLOUDS", "Cloud", "cloud_named"]


@dataclass(frozen=True, slots=True)
class Cloud:
    name: str
    authority_host: str  # e.g. "login.microsoftonline.com"
    graph_endpoint: str  # e.g. "https://graph.microsoft.com" (no trailing slash, no version)
    description: str

    @property
    def scope(self) -> str:
        """The app-only scope for Graph in this cloud."""
        return f"{self.graph_endpoint}/.default"

    def authority(self, tenant_id: str) -> str:
        """The tenant-specific authority URL (never ``/common`` for app-only)."""
        return f"https://{self.authority_host}/{tenant_id}"

    @property
    def graph_base_url(self) -> str:
        return f"{self.graph_endpoint}/v1.0"


CLOUDS: dict[str, Cloud] = {
    c.name: c
    for c in (
        Cloud(
            "global",
            "login.microsoftonline.com",
            "https://graph.microsoft.com",
            "Global Azure, including Microsoft 365 GCC",
        ),
        Cloud(
            "usgov", "login.microsoftonline.us", "https://graph.microsoft.us", "US Government L4 (GCC High)"
        ),
        Cloud(
            "usgovdod", "login.microsoftonline.us", "https://dod-graph.microsoft.us", "US Government L5 (DoD)"
        ),
        Cloud(
            "china",
            "login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "Microsoft Azure operated by 21Vianet (China)",
        ),
    )
}

_ALIASES = {
    "public": "global",
    "azurecloud": "global",
    "azurepubliccloud": "global",
    "gcc": "global",
    "gcchigh": "usgov",
    "usgovernment": "usgov",
    "azureusgovernment": "usgov",
    "dod": "usgovdod",
    "usdod": "usgovdod",
    "azurechinacloud": "china",
    "21vianet": "china",
}


def cloud_named(name: str | None) -> Cloud:
    """The cloud for a name (``global``, ``usgov``, ``usgovdod``, ``china`` or a common alias).

    None or empty means ``global``. Raises ConfigError naming the accepted values otherwise.
    """
    if not name:
        return CLOUDS["global"]
    key = name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    key = _ALIASES.get(key, key)
    if key not in CLOUDS:
        raise ConfigError(f"unknown cloud {name!r}; use one of: {', '.join(CLOUDS)}", key="ENTRA_SYNC_CLOUD")
    return CLOUDS[key]
