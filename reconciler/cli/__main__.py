"""``python -m reconciler.cli``: the same as the ``entra-sync`` command."""

from reconciler.cli import entry

entry()
