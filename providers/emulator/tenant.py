"""The tenant: :class:`providers.emulator.state.TenantState` plus saving to and loading from a file
(:mod:`providers.emulator.persist`)."""

from __future__ import annotations

import os

from providers.emulator.persist import load_tenant, save_tenant
from providers.emulator.records import Application, DeletedItem, DirObject, Operation, Team
from providers.emulator.state import TenantState
from reconciler.clock import Clock

__all__ = ["Application", "DeletedItem", "DirObject", "Operation", "Team", "Tenant"]


class Tenant(TenantState):
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write this tenant as JSON (atomically); see :mod:`providers.emulator.persist`."""
        save_tenant(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], clock: Clock | None = None) -> Tenant:
        """Read a tenant saved with :meth:`save`; raises ``TenantFileError`` for a bad file."""
        return load_tenant(path, clock, cls)
