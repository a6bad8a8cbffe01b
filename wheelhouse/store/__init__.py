"""The store: immutable distribution files and the catalogue of what is published (``store``,
over ``catalogue``, ``db``, ``staging`` and ``changes``; values in ``model``). Readers and
writers see it through the protocols in ``protocols``. The build system's own records
(failures, logs, locks, caches) are not here: see ``wheelhouse.ledger``.
"""
