"""Turning an sdist into a repaired wheel for one target: ``builders`` (which builder serves a
target), ``recipe`` (the one build), its ``runner`` and workspaces (``local``; ``container``
over ``engine``, with ``derived`` images), ``repair`` (auditwheel), ``smoke`` (the wheel's smoke
test in a clean environment), ``sdist`` (reading one before it is built) and ``causes`` (why a
build or a lock failed, read from its log). What to build and when is decided elsewhere
(``wheelhouse.plan``); this package only builds.
"""
