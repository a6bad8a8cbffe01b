"""wheelhouse: build wheels once per (package version, platform), store them, serve them.

The data flows requirements → plan → build (locally or in a container) → repair → store →
index → server; each step is a module of that name.
"""

__version__ = "0.1.0"
