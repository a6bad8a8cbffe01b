"""Options as values: what one run of ``wheelhouse build`` or ``wheelhouse serve`` does, made
once from the settings (``wheelhouse.config``) and passed to the pipeline or the server as
frozen records. Tokens are resolved here, once, from their files or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from wheelhouse.config import DEFAULT_MAX_UPLOAD_BYTES, Settings
from wheelhouse.errors import UsageError

if TYPE_CHECKING:
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


def build_options(settings: Settings, *, dry_run: bool = False, upgrade: bool = False
                  ) -> BuildOptions:
    """The settings' targets parsed (the host's own target when none is named)."""
    from wheelhouse.targets import host_target, parse_target

    # A configured builder image says which policy it makes; a target naming none gets it.
    defaults = {}
    if settings.images:
        from wheelhouse.build.engine import image_policies

        defaults = image_policies(settings.engine, settings.images)
    targets = tuple(parse_target(t, defaults=defaults) for t in settings.targets) or (
        host_target(),)
    return BuildOptions(settings=settings, targets=targets, dry_run=dry_run, upgrade=upgrade)


# -- the schema: key in files → (field name, converter) ---------------------------------------


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    """What every server entry point needs, tokens already resolved. Picklable, so it can
    cross a spawn to granian's workers; tokens stay out of its repr."""

    store: Path
    host: str = "127.0.0.1"
    port: int = 8000
    #: accept uploads at /legacy/ with it (HTTP Basic, user __token__), and create a missing
    #: store; None: uploads answer 403.
    upload_token: str | None = field(default=None, repr=False)
    #: every read but /health needs it (or the upload token); None: reading is open.
    read_token: str | None = field(default=None, repr=False)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: the simple index that names the store does not host fall through to; None: off.
    upstream_url: str | None = None
    #: seconds a fall-through page is kept.
    upstream_ttl: float = 600.0
    #: seconds clients may reuse a simple page unasked (0: always revalidate; 304s are cheap).
    page_max_age: int = 0
    #: how often, at most, the store's generation is checked.
    refresh_interval: float = 0.5
    #: answer the hot pages before Flask routing (off only to test both ways answer alike).
    hot_path: bool = True
    server: Literal["builtin", "granian"] = "builtin"
    #: granian's worker processes; None: its default.
    workers: int | None = None
    #: threads per process; None: the server's default (32 built-in, 4 per granian worker).
    threads: int | None = None
    access_log: bool = True


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
) -> ServerOptions:
    """The server's options from the settings and ``wheelhouse serve``'s flags, tokens read
    once (see ``resolve_token``). ``server="auto"`` is granian when ``workers`` is given.
    Raises UsageError."""
    kind: Literal["builtin", "granian"] = (
        server if server != "auto" else "granian" if workers is not None else "builtin")
    if kind == "builtin" and workers is not None:
        raise UsageError("--workers needs --server granian",
                         hint="the built-in server is one process; drop --workers")
    return ServerOptions(
        store=settings.store, host=settings.host, port=settings.port,
        upload_token=resolve_token("upload", upload_token_file, environ),
        read_token=resolve_token("read", read_token_file, environ),
        max_upload_bytes=(DEFAULT_MAX_UPLOAD_BYTES if max_upload_bytes is None
                          else max_upload_bytes),
        upstream_url=settings.index_url if settings.fall_through else None,
        server=kind, workers=workers, threads=threads, access_log=access_log,
    )
