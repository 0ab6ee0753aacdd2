"""The application: the composition root that wires the engine (:mod:`reconciler`) to the edges
(:mod:`providers`) — the CLI, the one run pipeline, the run store, the configuration loader and the
scheduler. It is the only package that reads the environment, prints, serves, or wires real clients.
See ``docs/architecture.md``."""

from reconciler import __version__

__all__ = ["__version__"]
