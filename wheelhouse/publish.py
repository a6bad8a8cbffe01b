"""Publishing from a builder to a shared index: ask the remote which of our files it already
has (its simple page, by filename and sha256) and upload only the missing ones with the legacy
upload API, the way twine does, streaming each file from the store.

A remote file with our filename but other bytes is a conflict: it is reported, never
overwritten (the remote refuses that anyway, as published files are immutable), and the other
files are still uploaded before ``PublishError`` is raised.
"""

from __future__ import annotations

import hashlib
import secrets
import tarfile
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import IO

import requests

from wheelhouse import __version__
from wheelhouse.distributions import read_wheel_metadata
from wheelhouse.errors import UpstreamError, WheelhouseError
from wheelhouse.store import Kind, Store, StoredFile
from wheelhouse.upstream import parse_html_links, parse_json_page

_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
)
_JSON = "application/vnd.pypi.simple.v1+json"
_BLOCK = 1 << 20
#: Attempts per upload. Uploads are idempotent (the same bytes again are a no-op), so a
#: dropped connection or a 5xx is simply retried.
_ATTEMPTS = 3

#: Core-metadata fields and the form fields the legacy upload API names them by (twine's
#: names: some are plural, "Home-page" becomes "home_page"); True for multiple-use fields,
#: which are sent as repeated parts.
_METADATA_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("Metadata-Version", "metadata_version", False),
    ("Name", "name", False),
    ("Version", "version", False),
    ("Summary", "summary", False),
    ("Description", "description", False),
    ("Description-Content-Type", "description_content_type", False),
    ("Keywords", "keywords", False),
    ("Home-page", "home_page", False),
    ("Download-URL", "download_url", False),
    ("Author", "author", False),
    ("Author-email", "author_email", False),
    ("Maintainer", "maintainer", False),
    ("Maintainer-email", "maintainer_email", False),
    ("License", "license", False),
    ("License-Expression", "license_expression", False),
    ("License-File", "license_file", True),
    ("Classifier", "classifiers", True),
    ("Platform", "platform", True),
    ("Supported-Platform", "supported_platform", True),
    ("Requires-Python", "requires_python", False),
    ("Requires-Dist", "requires_dist", True),
    ("Provides-Dist", "provides_dist", True),
    ("Obsoletes-Dist", "obsoletes_dist", True),
    ("Requires-External", "requires_external", True),
    ("Project-URL", "project_urls", True),
    ("Provides-Extra", "provides_extra", True),
    ("Dynamic", "dynamic", True),
    ("Requires", "requires", True),
    ("Provides", "provides", True),
    ("Obsoletes", "obsoletes", True),
)


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


class PublishError(WheelhouseError):
    """The remote index could not be read or refused an upload, or holds conflicting files.

    ``report`` says what was done before the error, when anything was.
    """

    exit_code = 9

    def __init__(
        self, message: str, *, hint: str | None = None, report: PublishReport | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.report = report


def simple_url_for(upload_url: str) -> str:
    """The simple index next to a wheelhouse upload URL: ``…/legacy/`` → ``…/simple/``."""
    parts = urllib.parse.urlsplit(upload_url)
    path = parts.path.rstrip("/")
    if parts.scheme not in ("http", "https") or not path.endswith("/legacy"):
        raise PublishError(
            f"cannot tell the simple index of the upload URL {_display(upload_url)}",
            hint="give a wheelhouse upload URL ending in /legacy/, or pass the simple index "
            "URL as well",
        )
    simple = path.removesuffix("legacy") + "simple/"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, simple, "", ""))


def publish_missing(
    store: Store,
    filenames: Iterable[str],
    url: str,
    token: str | None,
    *,
    report: Callable[[str], None],
    simple_url: str | None = None,
    session: requests.Session | None = None,
    timeout: float = 300.0,
) -> PublishReport:
    """Upload to the index at ``url`` (its legacy upload URL) those of ``filenames`` (files in
    ``store``) that it does not have yet.

    ``token`` is the index's upload token (HTTP Basic, user ``__token__``; it is also sent when
    listing, for indexes that need a token to read); None sends no credentials. ``simple_url``
    defaults to the wheelhouse layout (``…/legacy/`` → ``…/simple/``). ``report`` receives one
    line per file. Raises PublishError when the index cannot be read, refuses an upload, or has
    conflicting files (after uploading everything else).
    """
    index = simple_url or simple_url_for(url)
    index = index if index.endswith("/") else index + "/"
    http = session or _session()
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

    where = _display(url)
    try:
        for project in sorted(by_project):
            remote = _remote_files(http, index, project, auth, timeout)
            for f in sorted(by_project[project], key=lambda f: f.filename):
                state = _compare(f, remote)
                if state == "missing":
                    outcome = _upload(http, url, store, f, auth, timeout)
                    if outcome == "uploaded":
                        uploaded.append(f.filename)
                        report(f"{f.filename}: uploaded to {where}")
                        continue
                    # Someone else uploaded it meanwhile: look again to tell same from other.
                    remote = _remote_files(http, index, project, auth, timeout)
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
    http: requests.Session, index: str, project: str,
    auth: tuple[str, str] | None, timeout: float,
) -> dict[str, str | None]:
    """filename → sha256 (None if unlisted) of what the remote lists for ``project``."""
    page = urllib.parse.urljoin(index, f"{urllib.parse.quote(project, safe='')}/")
    try:
        resp = http.get(page, headers={"Accept": _ACCEPT}, auth=auth, timeout=timeout)
    except requests.RequestException as e:
        raise PublishError(
            f"cannot reach the index at {_display(index)}: {type(e).__name__}: {e}",
            hint="check the --publish URL and that the index is running",
        ) from None
    with resp:
        if resp.status_code == 404:
            return {}
        if resp.status_code in (401, 403):
            raise PublishError(
                f"the index at {_display(index)} refused to list {project} "
                f"(HTTP {resp.status_code})",
                hint="set WHEELHOUSE_UPLOAD_TOKEN to the index's upload token",
            )
        if resp.status_code != 200:
            raise PublishError(
                f"the index at {_display(index)} answered HTTP {resp.status_code} for "
                f"{project}: {resp.text[:200].strip()}"
            )
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        try:
            if ctype == _JSON:
                found = parse_json_page(resp.content, resp.url, index)
            else:
                found = parse_html_links(resp.text, resp.url, index)
        except UpstreamError as e:
            raise PublishError(e.message) from None
    # Only files the index hosts itself count. A wheelhouse index with fall-through also
    # lists upstream files for names it does not host, linked to the upstream's file host;
    # those are not in its store, so they still need uploading.
    origin = urllib.parse.urlsplit(resp.url)[:2]
    return {c.filename: c.sha256 for c in found
            if urllib.parse.urlsplit(c.url)[:2] == origin}


# -- uploading --------------------------------------------------------------------------------


def _upload(
    http: requests.Session, url: str, store: Store, f: StoredFile,
    auth: tuple[str, str] | None, timeout: float,
) -> str:
    """"uploaded", or "exists" when the remote says the filename is taken."""
    path = store.file_path(f)
    sha256, blake2 = _digests(path)
    if sha256 != f.sha256:
        raise PublishError(
            f"{f.filename} in the store at {store.root} does not match its catalogue hash",
            hint="the store's file was changed or damaged on disk; do not publish it",
        )
    fields = [
        *_form_fields(store, f),
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("sha256_digest", sha256),
        ("blake2_256_digest", blake2),
    ]
    for attempt in range(1, _ATTEMPTS + 1):
        body = MultipartBody(fields, ("content", f.filename, path))
        try:
            resp = http.post(
                url, data=body, auth=auth, timeout=timeout, allow_redirects=False,
                headers={"Content-Type": body.content_type},
            )
        except requests.RequestException as e:
            if attempt == _ATTEMPTS:
                raise PublishError(
                    f"uploading {f.filename} to {_display(url)} failed: {type(e).__name__}: {e}",
                    hint="check the --publish URL and the network; uploading again is safe",
                ) from None
            time.sleep(attempt)
            continue
        finally:
            body.close()
        with resp:
            status, text = resp.status_code, resp.text
            reason = resp.reason or ""
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
            f"{_display(url)} redirects uploads (HTTP {status}) to "
            f"{_display(resp.headers.get('Location', '?'))}",
            hint="use the exact upload URL; uploads are not redirected",
        )
    if status in (401, 403):
        raise PublishError(
            f"{_display(url)} refused the upload of {f.filename} (HTTP {status} {message})",
            hint="set WHEELHOUSE_UPLOAD_TOKEN to the index's upload token",
        )
    raise PublishError(
        f"{_display(url)} refused {f.filename}: HTTP {status} {message}",
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


def _core_metadata(store: Store, f: StoredFile) -> Message | None:
    """The file's METADATA (wheels) or PKG-INFO (sdists), or None if it cannot be read."""
    data: bytes | None = None
    try:
        if f.kind is Kind.WHEEL:
            meta = store.metadata_path(f)
            data = meta.read_bytes() if meta.is_file() else read_wheel_metadata(
                store.file_path(f), f.filename)
        else:
            base = f.filename.removesuffix(".tar.gz")
            with tarfile.open(store.file_path(f), "r:gz") as tf:
                handle = tf.extractfile(f"{base}/PKG-INFO")
                data = handle.read() if handle is not None else None
    except (WheelhouseError, KeyError, OSError, EOFError, tarfile.TarError, zlib.error):
        return None
    if data is None:
        return None
    return Parser().parsestr(data.decode("utf-8", "replace"))


def _form_fields(store: Store, f: StoredFile) -> list[tuple[str, str]]:
    """The metadata fields of the upload form, from the file's own metadata."""
    meta = _core_metadata(store, f)
    fields: list[tuple[str, str]] = []
    if meta is not None:
        for header, name, multiple in _METADATA_FIELDS:
            values = [str(v) for v in meta.get_all(header, [])]
            fields.extend((name, v) for v in (values if multiple else values[:1]))
        body = meta.get_payload()
        if "Description" not in meta and isinstance(body, str) and body.strip():
            fields.append(("description", body))
    present = {name for name, _ in fields}
    # The index matches these against the filename; never leave them out.
    if "name" not in present:
        fields.append(("name", f.project))
    if "version" not in present:
        fields.append(("version", f.version))
    if f.kind is Kind.WHEEL:
        # {name}-{ver}(-{build})?-{py}-{abi}-{plat}.whl: the python tag is third from the end.
        fields += [("filetype", "bdist_wheel"), ("pyversion", f.filename.split("-")[-3])]
    else:
        fields += [("filetype", "sdist"), ("pyversion", "source")]
    return fields


def _quote(value: str) -> str:
    # Content-Disposition parameters as browsers and requests write them: quoted, with the
    # characters that would end the quote or the line percent-encoded.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace(
        "\n", "%0A")


class MultipartBody:
    """A ``multipart/form-data`` body read in blocks, with its length known up front.

    requests sends it with a Content-Length and reads it block by block, so a large wheel is
    never held in memory (requests' own ``files=`` builds the whole body in memory).
    """

    def __init__(self, fields: list[tuple[str, str]], file: tuple[str, str, Path]) -> None:
        self.boundary = secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        dash = f"--{self.boundary}\r\n".encode()
        head = bytearray()
        for name, value in fields:
            head += dash
            head += f'Content-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
            head += value.encode("utf-8") + b"\r\n"
        field, filename, path = file
        head += dash
        head += (
            f'Content-Disposition: form-data; name="{_quote(field)}"; '
            f'filename="{_quote(filename)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._segments: list[bytes | Path] = [
            bytes(head), path, f"\r\n--{self.boundary}--\r\n".encode()
        ]
        self._length = sum(
            s.stat().st_size if isinstance(s, Path) else len(s) for s in self._segments
        )
        self._index = 0
        self._offset = 0
        self._open: IO[bytes] | None = None

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(_BLOCK):
            yield chunk

    def read(self, size: int = -1) -> bytes:
        limit = self._length if size is None or size < 0 else size
        out = bytearray()
        while len(out) < limit and self._index < len(self._segments):
            segment = self._segments[self._index]
            if isinstance(segment, bytes):
                piece = segment[self._offset:self._offset + limit - len(out)]
                self._offset += len(piece)
                done = self._offset >= len(segment)
            else:
                if self._open is None:
                    self._open = segment.open("rb")
                piece = self._open.read(limit - len(out))
                done = not piece
                if done:
                    self._open.close()
                    self._open = None
            out += piece
            if done:
                self._index += 1
                self._offset = 0
        return bytes(out)

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None


def _display(url: str) -> str:
    """A URL fit for messages: without any credentials in it."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = f"wheelhouse/{__version__} (publish)"
    return session
