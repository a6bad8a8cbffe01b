"""The one error hierarchy. Library code raises these; only the CLI turns them into a message,
a hint and an exit status (see ``cli.main``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wheelhouse.store.model import StoredFile


class WheelhouseError(Exception):
    """Base class: a message saying what went wrong and where, plus a hint saying what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(WheelhouseError):
    """The user asked for something that cannot work as written (bad flag value, bad file)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration key or value is wrong."""


class TargetError(UsageError):
    """An unknown or unsupported target identifier."""


class RequirementsError(UsageError):
    """A requirements file line that cannot be used; the message names file and line."""


class ResolutionError(WheelhouseError):
    """The pins cannot be turned into files for a target (no such version, no fitting file)."""

    exit_code = 3


class UpstreamError(WheelhouseError):
    """The upstream index or a find-links source failed (network, HTTP status, hash)."""

    exit_code = 4


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer within the time a client may wait (a server answers 504)."""


class UpstreamBusy(UpstreamError):
    """Too many requests already wait for the upstream (a server answers 503)."""


class StoreError(WheelhouseError):
    """The store cannot be opened or written."""

    exit_code = 5


class PublishConflict(StoreError):
    """Different bytes were offered for a file that is already published: under its filename,
    or under another spelling or build tag of the same release (``existing`` is that file)."""

    def __init__(self, message: str, *, hint: str | None = None,
                 existing: StoredFile | None = None) -> None:
        super().__init__(message, hint=hint)
        self.existing = existing


class InvalidDistribution(WheelhouseError):
    """A file is not a valid wheel or sdist (name, tags, METADATA)."""

    exit_code = 2


class BuildError(WheelhouseError):
    """One or more builds failed; other pins were still published."""

    exit_code = 6


class EngineError(WheelhouseError):
    """The container engine or emulation is missing, not running, or cannot run the image."""

    exit_code = 8


class ServeError(WheelhouseError):
    """The server cannot start (port in use, bad address)."""

    exit_code = 7
