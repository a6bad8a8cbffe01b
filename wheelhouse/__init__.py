"""wheelhouse: build wheels once per (package version, platform), store them, serve them.

The data flows requirements → plan → build (locally or in a container) → repair → store →
index → server; each step is a module or package of that name (CONTRIBUTING.md has the map).
The supported interface is the ``wheelhouse`` command, ``wheelhouse.server.app.create_app`` with
``wheelhouse.options.ServerOptions``, and ``wheelhouse.errors``; the rest is internal.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
