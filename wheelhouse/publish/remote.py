"""Publishing from a builder to a shared index: ask the remote which of our files it already
has (its simple page, by filename and sha256) and upload only the missing ones with the legacy
upload API, the way twine does, streaming each file from the store (the request itself is
``wheelhouse.publish.form``; the remote's pages are read with ``wheelhouse.simple.client``).

A remote file with our filename but other bytes is a conflict: it is reported, never
overwritten (the remote refuses that anyway, as published files are immutable), and the other
files are still uploaded before ``PublishError`` is raised.
"""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import requests

from wheelhouse import __version__
from wheelhouse.errors import FetchError, PublishError, UpstreamError
from wheelhouse.publish.form import MultipartBody, form_fields
from wheelhouse.simple.client import SimpleClient, origin
from wheelhouse.simple.pages import display
from wheelhouse.store.model import StoredFile
from wheelhouse.store.protocols import StoreReader

_BLOCK = 1 << 20
#: Attempts per upload. Uploads are idempotent (the same bytes again are a no-op), so a
#: dropped connection or a 5xx is simply retried.
_ATTEMPTS = 3
#: Attempts when the index says it is busy (503, e.g. its upload slots are taken by other
#: runners): it says when to come back, and that is no failure of ours.
_BUSY_ATTEMPTS = 12
_MAX_WAIT = 30.0

@dataclass(frozen=True, kw_only=True)
class Conflict:
    """The remote has our filename with other bytes."""

    filename: str
    local_sha256: str
    remote_sha256: str


@dataclass(frozen=True, kw_only=True)
class PublishReport:
    uploaded: tuple[str, ...] = ()
    #: already on the remote with the same sha256 (or without a hash to compare, see below).
    present: tuple[str, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    #: asked for, but not in the local store (a build that failed): nothing to upload.
    not_in_store: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.conflicts



def simple_url_for(upload_url: str) -> str:
    """The simple index next to a wheelhouse upload URL: ``…/legacy/`` → ``…/simple/``."""
    parts = urllib.parse.urlsplit(upload_url)
    path = parts.path.rstrip("/")
    if parts.scheme not in ("http", "https") or not path.endswith("/legacy"):
        raise PublishError(
            f"cannot tell the simple index of the upload URL {display(upload_url)}",
            hint="give a wheelhouse upload URL ending in /legacy/, or pass the simple index "
            "URL as well",
        )
    simple = path.removesuffix("legacy") + "simple/"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, simple, "", ""))


def publish_missing(
    store: StoreReader,
    filenames: Iterable[str],
    url: str,
    token: str | None,
    *,
    report: Callable[[str], None],
    simple_url: str | None = None,
    session: requests.Session | None = None,
    client: SimpleClient | None = None,
    timeout: float = 300.0,
) -> PublishReport:
    """Upload to the index at ``url`` (its legacy upload URL) those of ``filenames`` (files in
    ``store``) that it does not have yet.

    ``token`` is the index's upload token (HTTP Basic, user ``__token__``; it is also sent when
    listing, for indexes that need a token to read); None sends no credentials. ``simple_url``
    defaults to the wheelhouse layout (``…/legacy/`` → ``…/simple/``). ``report`` receives one
    line per file. Raises PublishError when the index cannot be read, refuses an upload, or has
    conflicting files (after uploading everything else). ``session`` uploads, ``client``
    reads the index's pages.
    """
    index = simple_url or simple_url_for(url)
    index = index if index.endswith("/") else index + "/"
    http = session or _session()
    pages = client or SimpleClient("publish", deadline=timeout)
    auth = ("__token__", token) if token is not None else None
    wanted: dict[str, StoredFile] = {}
    not_in_store: list[str] = []
    for name in dict.fromkeys(filenames):
        f = store.get(name)
        if f is None:
            not_in_store.append(name)
            report(f"{name}: not in the store, nothing to upload")
        else:
            wanted[name] = f
    by_project: dict[str, list[StoredFile]] = {}
    for f in wanted.values():
        by_project.setdefault(f.project, []).append(f)

    uploaded: list[str] = []
    present: list[str] = []
    conflicts: list[Conflict] = []

    def partial() -> PublishReport:
        return PublishReport(uploaded=tuple(uploaded), present=tuple(present),
                             conflicts=tuple(conflicts), not_in_store=tuple(not_in_store))

    where = display(url)
    try:
        for project in sorted(by_project):
            remote = _remote_files(pages, index, project, auth)
            for f in sorted(by_project[project], key=lambda f: f.filename):
                state = _compare(f, remote)
                if state == "missing":
                    outcome = _upload(http, url, store, f, auth, timeout)
                    if outcome == "uploaded":
                        uploaded.append(f.filename)
                        report(f"{f.filename}: uploaded to {where}")
                        continue
                    # Someone else uploaded it meanwhile: look again to tell same from other.
                    remote = _remote_files(pages, index, project, auth)
                    state = _compare(f, remote)
                    if state == "missing":
                        raise PublishError(
                            f"{where} says {f.filename} exists but does not list it under "
                            f"{index}{project}/",
                            hint="check that the upload URL and the simple index URL belong "
                            "to the same index",
                        )
                if state == "present":
                    present.append(f.filename)
                    report(f"{f.filename}: already on {where}")
                else:
                    remote_sha = remote.get(f.filename) or "?"
                    conflicts.append(Conflict(filename=f.filename, local_sha256=f.sha256,
                                              remote_sha256=remote_sha))
                    report(f"{f.filename}: CONFLICT: {where} has other bytes under this name "
                           f"(sha256 {remote_sha[:12]}…, ours {f.sha256[:12]}…); not uploaded")
    except PublishError as e:
        e.report = e.report or partial()
        raise
    result = partial()
    if conflicts:
        raise PublishError(
            f"{len(conflicts)} file(s) exist on {where} with other bytes: "
            + ", ".join(c.filename for c in conflicts),
            hint="published files never change; a rebuild needs a new version or build tag "
            "(or remove the remote file by hand if it is wrong)",
            report=result,
        )
    return result


# -- reading the remote index -----------------------------------------------------------------


def _compare(f: StoredFile, remote: dict[str, str | None]) -> str:
    if f.filename not in remote:
        return "missing"
    remote_sha = remote[f.filename]
    # A listing without a hash cannot be checked; the remote refuses a different upload
    # under the same name anyway, so treating it as present loses nothing.
    if remote_sha is None or remote_sha == f.sha256:
        return "present"
    return "conflict"


def _remote_files(
    pages: SimpleClient, index: str, project: str, auth: tuple[str, str] | None
) -> dict[str, str | None]:
    """filename → sha256 (None if unlisted) of what the remote lists for ``project``."""
    try:
        found = pages.project_page(index, project, auth=auth)
    except FetchError as e:
        if e.status is None:
            raise PublishError(
                e.message,
                hint="check the --publish URL and that the index is running",
            ) from None
        if e.status in (401, 403):
            raise PublishError(
                f"the index at {display(index)} refused to list {project} (HTTP {e.status})",
                hint="set WHEELHOUSE_UPLOAD_TOKEN to the index's upload token",
            ) from None
        raise PublishError(f"the index at {display(index)} answered HTTP {e.status} for "
                           f"{project}: {e.detail}") from None
    except UpstreamError as e:
        raise PublishError(e.message) from None
    # Only files the index hosts itself count. A wheelhouse index with fall-through also
    # lists upstream files for names it does not host, linked to the upstream's file host;
    # those are not in its store, so they still need uploading. (Pages are read only
    # through same-origin redirects, so the index's origin is the page's.)
    here = origin(index)
    return {c.filename: c.sha256 for c in found or () if origin(c.url) == here}


# -- uploading --------------------------------------------------------------------------------


def _upload(
    http: requests.Session, url: str, store: StoreReader, f: StoredFile,
    auth: tuple[str, str] | None, timeout: float,
) -> str:
    """"uploaded", or "exists" when the remote says the filename is taken."""
    path = store.local_file(f)
    sha256, blake2 = _digests(path)
    if sha256 != f.sha256:
        raise PublishError(
            f"{f.filename} in the store at {store.root} does not match its catalogue hash",
            hint="the store's file was changed or damaged on disk; do not publish it",
        )
    fields = [
        *form_fields(store, f),
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("sha256_digest", sha256),
        ("blake2_256_digest", blake2),
    ]
    attempt = busy = 0
    while True:
        attempt += 1
        body = MultipartBody(fields, ("content", f.filename, path))
        try:
            resp = http.post(
                url, data=body, auth=auth, timeout=timeout, allow_redirects=False,
                headers={"Content-Type": body.content_type},
            )
        except requests.RequestException as e:
            if attempt == _ATTEMPTS:
                raise PublishError(
                    f"uploading {f.filename} to {display(url)} failed: {type(e).__name__}: {e}",
                    hint="check the --publish URL and the network; uploading again is safe",
                ) from None
            time.sleep(attempt)
            continue
        finally:
            body.close()
        with resp:
            status, text = resp.status_code, resp.text
            reason = resp.reason or ""
            retry_after = resp.headers.get("Retry-After", "")
        if status == 503 and busy < _BUSY_ATTEMPTS:
            busy += 1
            attempt -= 1
            time.sleep(min(float(retry_after), _MAX_WAIT) if retry_after.isdigit() else busy)
            continue
        if 500 <= status < 600 and attempt < _ATTEMPTS:
            time.sleep(attempt)
            continue
        break
    if status in (200, 201):
        return "uploaded"
    message = f"{reason}: {text.strip()[:300]}" if text.strip() else reason
    # pypiserver and wheelhouse say 409; PyPI says 400 "File already exists".
    if status == 409 or (status == 400 and "already exist" in (reason + text).lower()):
        return "exists"
    if 300 <= status < 400:
        raise PublishError(
            f"{display(url)} redirects uploads (HTTP {status}) to "
            f"{display(resp.headers.get('Location', '?'))}",
            hint="use the exact upload URL; uploads are not redirected",
        )
    if status in (401, 403):
        raise PublishError(
            f"{display(url)} refused the upload of {f.filename} (HTTP {status} {message})",
            hint="set WHEELHOUSE_UPLOAD_TOKEN to the index's upload token",
        )
    raise PublishError(
        f"{display(url)} refused {f.filename}: HTTP {status} {message}",
        hint="the message above is the index's; fix the file or the index and run again",
    )


def _digests(path: Path) -> tuple[str, str]:
    sha256 = hashlib.sha256()
    blake2 = hashlib.blake2b(digest_size=32)
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_BLOCK):
                sha256.update(chunk)
                blake2.update(chunk)
    except OSError as e:
        raise PublishError(f"cannot read {path}: {e}") from None
    return sha256.hexdigest(), blake2.hexdigest()


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = f"wheelhouse/{__version__} (publish)"
    return session
