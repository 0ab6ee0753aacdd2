"""The web console (``entra-sync console``): dashboards, run pages, held plans, settings.

Application layer: every run goes through :class:`entra_sync.pipeline.RunPipeline`; every value
lives in the one store (:mod:`entra_sync.store`). Server-side rendered (Starlette + Jinja2).
"""
