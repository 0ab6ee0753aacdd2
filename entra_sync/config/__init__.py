"""Loading and checking ``entra-sync.toml`` into :class:`reconciler.settings.Config` values."""
