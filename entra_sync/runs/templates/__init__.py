"""Jinja2 templates shipped with the package (``*.j2`` package data), read with importlib.resources."""
