"""``python -m entra_sync.cli``: the same as the ``entra-sync`` command."""

from entra_sync.cli import entry

entry()
