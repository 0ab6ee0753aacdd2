"""Every route the emulator serves: each handlers module registers its own on one router."""

from __future__ import annotations

from providers.emulator import (
    handlers_aus,
    handlers_directory,
    handlers_education,
    handlers_groups,
    handlers_teams,
    handlers_users,
)
from providers.emulator.router import Router

__all__ = ["build_router"]

_MODULES = (
    handlers_users,
    handlers_groups,
    handlers_aus,
    handlers_teams,
    handlers_directory,
    handlers_education,
)


def build_router() -> Router:
    router = Router()
    for module in _MODULES:
        module.register(router)
    return router
