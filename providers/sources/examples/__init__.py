"""Bundled example data: ``realsmart-export.example.json``, a two-school trust (for the demo)."""
