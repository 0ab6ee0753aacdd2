"""Every route the emulator serves."""

from __future__ import annotations

from providers.emulator import (
    handlers_aus,
    handlers_directory,
    handlers_groups,
    handlers_teams,
    handlers_users,
)
from providers.emulator.router import Route

__all__ = ["ROUTES"]

ROUTES: list[Route] = [
    *handlers_users.ROUTES,
    *handlers_groups.ROUTES,
    *handlers_aus.ROUTES,
    *handlers_teams.ROUTES,
    *handlers_directory.ROUTES,
]
