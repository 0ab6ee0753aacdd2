"""Many tenants on a worker fleet: Celery workers and one beat on a Redis broker, every tenant's runs,
registry, slots and health in one shared store (PostgreSQL; SQLite on one host).

- :mod:`~entra_sync.fleet.registry`: the tenants (configuration, credential reference, schedule and
  time zone, paused) and their health (last success, consecutive failures, degraded);
- :mod:`~entra_sync.fleet.slots`: each scheduled (or catch-up) run of a tenant as a row, made due
  with a jitter, dispatched once;
- :mod:`~entra_sync.fleet.lease`: the fleet-wide lock per tenant, a Redis key with a lease that a
  crashed worker cannot keep (renewed while a run goes on);
- :mod:`~entra_sync.fleet.runner`: one slot of one tenant through the one run pipeline;
- :mod:`~entra_sync.fleet.app`: the Celery application, its tick and run tasks;
- :mod:`~entra_sync.fleet.metrics`: fleet health as Prometheus exposition text.
"""
