"""The one error hierarchy, and the exit statuses it defines.

Library code raises these; only the CLI turns them into a message, a hint and an exit status.
A class that introduces an exit status says what it means (``meaning``); ``exit_statuses()``
builds the table that ``wheelhouse --help`` prints and the README repeats (a test keeps the
two equal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from wheelhouse.publish.remote import PublishReport
    from wheelhouse.store.model import StoredFile

#: statuses no error class carries.
_SUCCESS = (0, "success, or nothing to do")
_INTERRUPTED = (130, "interrupted")


class WheelhouseError(Exception):
    """Base class: a message saying what went wrong and where, plus a hint saying what to do."""

    exit_code: ClassVar[int] = 1
    meaning: ClassVar[str] = "an unexpected error (a bug: please report it)"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


# -- 2: bad input ---------------------------------------------------------------------------

class UsageError(WheelhouseError):
    """The user asked for something that cannot work as written (bad flag value, bad file)."""

    exit_code = 2
    meaning = ("bad input: a flag, the config, a requirements line, a lockfile, a target, "
               "a `--report` path")


class ConfigError(UsageError):
    """A configuration key or value is wrong."""


class TargetError(UsageError):
    """An unknown or unsupported target identifier."""


class RequirementsError(UsageError):
    """A requirements file line that cannot be used; the message names file and line."""


class InvalidDistribution(WheelhouseError):
    """A file is not a valid wheel or sdist (name, tags, METADATA)."""

    exit_code = 2


# -- 3: resolution --------------------------------------------------------------------------

class ResolutionError(WheelhouseError):
    """The pins cannot be turned into files for a target (no such version, no fitting file)."""

    exit_code = 3
    meaning = ("a pin cannot be resolved to files for a target (`check`, `lock`: the store "
               "lacks files for it)")


class LockFailed(ResolutionError):
    """pip-compile could not lock the input; ``output`` is what it printed."""

    def __init__(self, message: str, *, output: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.output = output


# -- 4: the upstream ------------------------------------------------------------------------

class UpstreamError(WheelhouseError):
    """The upstream index or a find-links source failed (network, HTTP status, hash)."""

    exit_code = 4
    meaning = "the upstream index or a find-links source failed"


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer within the time a client may wait (a server answers 504)."""


class UpstreamBusy(UpstreamError):
    """Too many requests already wait for the upstream (a server answers 503)."""


class FetchError(UpstreamError):
    """An index answered with something we cannot use; ``status`` is its HTTP status, None
    when there was no answer (network, timeout). ``detail``: the start of its body."""

    def __init__(self, message: str, *, status: int | None, detail: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.detail = detail


class FetchTimeout(FetchError):
    """The index did not answer within the client's deadline."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=None)


class MetadataUnavailable(UpstreamError):
    """A wheel's METADATA cannot be had without downloading the whole file."""


# -- 5: the store ---------------------------------------------------------------------------

class StoreError(WheelhouseError):
    """The store cannot be opened or written."""

    exit_code = 5
    meaning = "the store cannot be read or written"


class PublishConflict(StoreError):
    """Different bytes were offered for a file that is already published: under its filename,
    or under another spelling or build tag of the same release (``existing`` is that file)."""

    def __init__(self, message: str, *, hint: str | None = None,
                 existing: StoredFile | None = None) -> None:
        super().__init__(message, hint=hint)
        self.existing = existing


class StoreFull(StoreError):
    """The filesystem holding the store has no room for a write (ENOSPC, a quota, or SQLite
    failing with almost nothing free): ``path`` was being written, ``needed`` bytes were
    wanted when known, ``free`` were left. Nothing partial is kept; a server answers 507."""

    def __init__(self, message: str, *, hint: str | None = None, path: str = "",
                 needed: int | None = None, free: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.needed = needed
        self.free = free


class SchemaTooNew(StoreError):
    """The shared catalogue (PostgreSQL) was migrated by a newer wheelhouse than this one:
    reading or writing it with older code could lose what the newer code records."""

    exit_code = 10
    meaning = ("the shared catalogue's schema is newer than this wheelhouse (upgrade "
               "wheelhouse)")


# -- 6: builds ------------------------------------------------------------------------------

class BuildError(WheelhouseError):
    """One or more builds failed; other pins were still published."""

    exit_code = 6
    meaning = "builds failed; everything else was still published"


class BuildFailed(BuildError):
    """One build did not produce a fitting wheel; the message says why, the log says more.
    A value of the run (recorded in the ledger, reported per pin), not a reason to stop it.
    ``killed``: its command was stopped by a signal (Ctrl-C, a cancelled CI job, the
    out-of-memory killer), which says nothing about the package."""

    def __init__(self, message: str, *, timed_out: bool = False, killed: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.killed = killed


# -- 7: serving -----------------------------------------------------------------------------

class ServeError(WheelhouseError):
    """The server cannot start (port in use, bad address)."""

    exit_code = 7
    meaning = "the server cannot start"


# -- 8: the machine -------------------------------------------------------------------------

class EngineError(WheelhouseError):
    """The container engine or emulation is missing, not running, or cannot run the image."""

    exit_code = 8
    meaning = ("this machine cannot build: no container engine, image, emulation, compiler "
               "or disk space (wins over 6: fix the machine first)")


# -- 9: publishing --------------------------------------------------------------------------

class PublishError(WheelhouseError):
    """The remote index could not be read or refused an upload, or holds conflicting files.

    ``report`` says what was done before the error, when anything was.
    """

    exit_code = 9
    meaning = "publishing failed or found conflicting files"

    def __init__(
        self, message: str, *, hint: str | None = None, report: PublishReport | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.report = report


# -- not errors of a run: signals inside the server -----------------------------------------

class Stalled(Exception):
    """An upload's client did not send the next block of its body in time (the server answers
    408 or closes the connection)."""


def exit_statuses() -> list[tuple[int, str]]:
    """Every exit status the command can end with and what it means, in order."""
    rows = dict([_SUCCESS, _INTERRUPTED])
    stack: list[type[WheelhouseError]] = [WheelhouseError]
    while stack:
        cls = stack.pop()
        if "meaning" in vars(cls):
            rows[cls.exit_code] = cls.meaning
        stack.extend(cls.__subclasses__())
    return sorted(rows.items())
