"""Jinja2 templates, shipped as package data (quantzero_ci.templates)."""
