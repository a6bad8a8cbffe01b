"""The ``wheelhouse`` command: one module per command (``build``, ``check``, ``lock``,
``listing``, ``serve``, ``export``, ``gc``, ``targets``), the options they share
(``common``), and the group that maps errors to exit statuses (``root``). ``main`` is the
console entry point; importing this package does nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``wheelhouse`` console script."""
    from wheelhouse.cli.root import run

    run(argv)
