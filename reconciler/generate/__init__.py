"""The generator: school model -> desired state, with names from sandboxed Jinja2 templates."""
