"""Renderers of a plan for people: text (terraform-like) and Markdown."""
