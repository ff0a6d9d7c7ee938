"""The service's Jinja templates (HTML autoescaped: user text never becomes markup)."""

import os

import jinja2

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
    autoescape=jinja2.select_autoescape(("html",)),
)
