"""Bundled datasets as package data: one folder per dataset (``korea/``: dataset.toml, units, panel, flows).

In a source checkout ``korea`` links to the repository's ``data/korea`` (built by ``data/build_korea.py``); a
wheel carries the files themselves. Found through :func:`importlib.resources.files`.
"""
