"""How a build fails: one exception whose message says why, for the ledger and the user."""

from __future__ import annotations


class BuildFailed(Exception):
    """A build did not produce a fitting wheel; the message says why, the log says more."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out
