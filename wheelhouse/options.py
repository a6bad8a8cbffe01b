"""Options as values: what one run of ``wheelhouse build`` or ``wheelhouse serve`` does, made
once from the settings (``wheelhouse.config``) and passed to the pipeline or the server as
frozen records. Tokens are resolved here, once, from their files or the environment. Only
values are made here: no process starts and no engine is asked (image policies come in from
the builders)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from wheelhouse.errors import UsageError
from wheelhouse.settings import DEFAULT_MAX_UPLOAD_BYTES, Settings

if TYPE_CHECKING:
    from wheelhouse.platforms import Policy
    from wheelhouse.targets import Target


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """What one ``wheelhouse build`` run does: the settings, the parsed targets and the
    run's own flags. Made once by the CLI (``build_options``), read by the pipeline."""

    settings: Settings
    targets: tuple[Target, ...]
    dry_run: bool = False
    #: re-resolve unpinned input instead of reusing the last lock and plan.
    upgrade: bool = False

    @property
    def retry_failed(self) -> bool:
        return self.settings.retry_failed


def build_options(settings: Settings, *, policies: Mapping[str, Policy] | None = None,
                  dry_run: bool = False, upgrade: bool = False) -> BuildOptions:
    """The settings' targets parsed (the host's own target when none is named). ``policies``:
    platform → the policy its builder image makes, which a target naming none gets; the caller
    asks the builders for them (``wheelhouse.builder.builders.default_policies``), so making
    options starts no process."""
    from wheelhouse.selectors import select_targets
    from wheelhouse.targets import host_target, parse_target

    named = select_targets(settings.targets, settings.skip)
    if settings.targets and not named:
        raise UsageError(
            "every target named is skipped: " + ", ".join(settings.targets),
            hint="narrow `skip` (it drops targets matching its globs)")
    targets = tuple(parse_target(t, defaults=policies) for t in named) or (host_target(),)
    return BuildOptions(settings=settings, targets=targets, dry_run=dry_run, upgrade=upgrade)


# -- the schema: key in files → (field name, converter) ---------------------------------------


#: Threads per process that run the app, when the options do not say: werkzeug's pool, and
#: granian's blocking threads per worker. Upstream waits and uploads may take only part of
#: them (see ``ServerOptions``), so a few are always left for the hosted pages.
BUILTIN_THREADS = 32
GRANIAN_THREADS = 8

ServerKind = Literal["builtin", "granian"]


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    """What every server entry point needs, tokens already resolved. Picklable, so it can
    cross a spawn to granian's workers; tokens stay out of its repr."""

    #: a directory, or a bucket as ``s3://BUCKET/PREFIX`` (which needs ``catalogue``).
    store: Path | str
    #: the catalogue in PostgreSQL (``postgresql://…``), shared by replicas; None: SQLite.
    catalogue: str | None = field(default=None, repr=False)
    #: answer downloads from a bucket with a redirect to a presigned URL (off: the server
    #: streams them, so clients need no access to the bucket).
    presign_downloads: bool = False
    #: the public endpoint presigned URLs point at; None: the replicas' own endpoint.
    presign_endpoint: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    #: accept uploads at /legacy/ with it (HTTP Basic, user __token__), and create a missing
    #: store; None: uploads answer 403.
    upload_token: str | None = field(default=None, repr=False)
    #: every read but /health needs it (or the upload token); None: reading is open.
    read_token: str | None = field(default=None, repr=False)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: accept uploads whose version has a local label (``1.0+abc``). Off: ``pip install
    #: foo==1.0`` also matches ``1.0+abc`` and prefers it, so an uploader could shadow a
    #: release without touching its file.
    allow_local_versions: bool = False
    #: accept uploaded wheels with a build tag (``foo-1.0-1-py3-none-any.whl``). Off: installers
    #: prefer the highest build tag, the same shadowing as above.
    allow_build_tags: bool = False
    #: uploads read at once per process; more are answered 503 with Retry-After, so uploads
    #: never take every thread from the readers.
    upload_slots: int = 2
    #: seconds an upload may take to deliver each MiB of its body (a floor of ~35 KB/s); a
    #: slower one is answered 408 (see ``wheelhouse.server.bodies`` for what this bounds).
    upload_stall_timeout: float = 30.0
    #: the simple index that names the store does not host fall through to; None: off.
    upstream_url: str | None = None
    #: seconds a fall-through page is kept.
    upstream_ttl: float = 600.0
    #: seconds a client waits for the upstream (retries included) before a 504.
    upstream_timeout: float = 10.0
    #: requests that may wait for the upstream at once, per process; more get 503 at once.
    #: None: half the threads, so the hosted pages always have threads left.
    upstream_waiters: int | None = None
    #: seconds clients may reuse a simple page unasked (0: always revalidate; 304s are cheap).
    page_max_age: int = 0
    #: how often, at most, the store's generation is checked when its change marker is
    #: missing (an older store, or a read-only one nobody writes).
    refresh_interval: float = 0.5
    #: bytes of small files (up to 1 MiB each) each process keeps in memory to answer
    #: downloads from; 0 reads every download from disk.
    file_cache_bytes: int = 64 << 20
    #: answer the hot pages before Flask routing (off only to test both ways answer alike).
    hot_path: bool = True
    #: what runs the app. ``wheelhouse serve`` defaults to granian (``server_options``); the
    #: werkzeug server is for development only.
    server: ServerKind = "builtin"
    #: granian's worker processes; None: its default.
    workers: int | None = None
    #: threads per process; None: the server's default (``BUILTIN_THREADS``,
    #: ``GRANIAN_THREADS``).
    threads: int | None = None
    #: granian: seconds a client may take to send its request headers, which is also how long
    #: a kept-alive connection may stay idle.
    header_timeout: float = 10.0
    #: granian: connections each worker keeps open at once; more wait in the listen backlog.
    max_connections: int = 4096
    access_log: bool = True

    def threads_per_process(self) -> int:
        if self.threads is not None:
            return self.threads
        return GRANIAN_THREADS if self.server == "granian" else BUILTIN_THREADS

    def upstream_waiter_budget(self) -> int:
        if self.upstream_waiters is not None:
            return self.upstream_waiters
        return max(1, self.threads_per_process() // 2)


def token_from_file(path: Path) -> str:
    """The token in ``path``: the file's text without surrounding whitespace.

    For ``--upload-token-file``-style options, so a token need not sit in the environment or on
    a command line (both visible to other users through /proc). Raises UsageError.
    """
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(
            f"cannot read the token file {path}: {e}",
            hint="the file must be readable by this user and hold the token as UTF-8 text",
        ) from None
    if not token:
        raise UsageError(f"the token file {path} is empty", hint="write the token into it")
    return token


def resolve_token(
    kind: Literal["upload", "read"],
    file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """A token from its file if one is given, else from ``WHEELHOUSE_UPLOAD_TOKEN`` or
    ``WHEELHOUSE_READ_TOKEN`` in ``environ`` (``os.environ`` when None); empty is unset."""
    if file is not None:
        return token_from_file(file)
    env = os.environ if environ is None else environ
    return env.get(f"WHEELHOUSE_{kind.upper()}_TOKEN") or None


def server_options(
    settings: Settings,
    *,
    upload_token_file: Path | None = None,
    read_token_file: Path | None = None,
    max_upload_bytes: int | None = None,
    server: Literal["auto", "builtin", "granian"] = "auto",
    workers: int | None = None,
    threads: int | None = None,
    access_log: bool = True,
    environ: Mapping[str, str] | None = None,
    **limits: Any,
) -> ServerOptions:
    """The server's options from the settings and ``wheelhouse serve``'s flags, tokens read
    once (see ``resolve_token``). ``server="auto"`` is granian, the production server; the
    built-in one only when asked for. ``limits``: other ``ServerOptions`` fields (None:
    their default). Raises UsageError."""
    kind: ServerKind = "granian" if server == "auto" else server
    if kind == "builtin" and workers is not None:
        raise UsageError("--workers needs --server granian",
                         hint="the built-in server is one process; drop --workers")
    return ServerOptions(
        store=settings.store_location, catalogue=settings.catalogue,
        presign_downloads=settings.presign_downloads,
        presign_endpoint=settings.presign_endpoint, host=settings.host, port=settings.port,
        upload_token=resolve_token("upload", upload_token_file, environ),
        read_token=resolve_token("read", read_token_file, environ),
        max_upload_bytes=(DEFAULT_MAX_UPLOAD_BYTES if max_upload_bytes is None
                          else max_upload_bytes),
        upstream_url=settings.index_url if settings.fall_through else None,
        server=kind, workers=workers, threads=threads, access_log=access_log,
        **{k: v for k, v in limits.items() if v is not None},
    )
