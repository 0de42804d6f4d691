"""The GitHub edge: action inputs, outputs, annotations, PR comments and base-branch comparison.

Nothing in the core imports this package; only ``entrypoint.py`` (via :mod:`.adapter`) and the
``quantzero comment`` CLI command do.
"""
