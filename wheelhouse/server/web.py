"""The web page for people: ``/`` (one matrix of every pin by the targets the store serves,
failed pins first with their causes, a search box, how to use the index),
``/project/<name>/``, and read-only build logs and provenance.

Reads the catalogue snapshot the index serves and the build ledger's failures; needs the read
token when the index does. Logs are served only from the store's ``logs/`` directory. The app
registers it with what it reads (``register``, a ``WebContext``); it never imports the app.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, request, send_file
from packaging.utils import canonicalize_name
from werkzeug.security import safe_join

from wheelhouse.errors import StoreError
from wheelhouse.ledger import FILENAME as LEDGER_FILENAME
from wheelhouse.ledger import open_ledger
from wheelhouse.server.auth import Access
from wheelhouse.server.hot import READ_CHECKED, PageOptions
from wheelhouse.server.matrix import Matrix, build_matrix
from wheelhouse.server.state import IndexState
from wheelhouse.server.webpage import render
from wheelhouse.store.s3 import S3Blobs

web_bp = Blueprint("web", __name__)

#: Pins shown on ``/`` before the search box has to narrow them.
FRONT_PAGE_LIMIT = 300

# No script, no frames, no outside resources: the page is plain HTML and one inline stylesheet.
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


@web_bp.before_request
def _check_read_access() -> Response | None:
    if request.environ.get(READ_CHECKED):
        return None
    denied = _ctx().access.read_denied(request.environ)
    if denied is None:
        return None
    return Response(denied.body, status=denied.status, headers=list(denied.headers))


@dataclass(frozen=True, kw_only=True)
class _Cached:
    key: tuple[int, int]
    matrix: Matrix


class _MatrixCache:
    """The matrix, rebuilt only when the catalogue's generation or the ledger file moves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: _Cached | None = None

    def get(self, state: IndexState, root: Path, catalogue: str | None = None) -> Matrix:
        snapshot = state.current()
        # A ledger in PostgreSQL has no file to stat: read it again every few seconds.
        stamp = _ledger_stamp(root) if catalogue is None else int(time.monotonic() // 5)
        key = (snapshot.generation, stamp)
        cached = self._cached
        if cached is not None and cached.key == key:
            return cached.matrix
        with self._lock:
            try:
                failures = open_ledger(root, catalogue=catalogue, readonly=True).failures()
            except StoreError:
                # A ledger being created or locked must not take the page down; the files are
                # still worth showing.
                current_app.logger.exception("cannot read the build ledger in %s", root)
                failures = []
            matrix = build_matrix(snapshot.files.values(), failures)
            self._cached = _Cached(key=key, matrix=matrix)
            return matrix


def _ledger_stamp(root: Path) -> int:
    # WAL mode: a commit may touch only the -wal file until the next checkpoint.
    stamp = 0
    for name in (LEDGER_FILENAME, LEDGER_FILENAME + "-wal"):
        with contextlib.suppress(OSError):
            stamp = max(stamp, os.stat(root / name).st_mtime_ns)
    return stamp


@dataclass(frozen=True, kw_only=True)
class WebContext:
    """What the page reads, kept in ``app.extensions["wheelhouse.web"]`` (no module globals)."""

    state: IndexState
    #: the store's root: the ledger and ``logs/`` are read there.
    root: Path
    access: Access
    pages: PageOptions
    matrix: _MatrixCache = field(default_factory=_MatrixCache)
    #: a shared store's: the ledger is in this PostgreSQL database, logs in this bucket.
    catalogue: str | None = None
    blobs: S3Blobs | None = None


def register(app: Flask, context: WebContext) -> None:
    """Serve the page from ``app``, reading what ``context`` gives."""
    app.extensions["wheelhouse.web"] = context
    app.register_blueprint(web_bp)


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["wheelhouse.web"]
    return ctx


def _matrix() -> Matrix:
    ctx = _ctx()
    return ctx.matrix.get(ctx.state, ctx.root, ctx.catalogue)


def _page(html: str) -> Response:
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = _CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = _ctx().pages.cache_control
    return resp


def _root() -> str:
    return request.script_root.rstrip("/") + "/"


@web_bp.get("/")
def home() -> Response:
    matrix = _matrix()
    query = request.args.get("q", "").strip()[:200]
    url_root = request.url_root.rstrip("/") + "/"
    return _page(render(
        "index", root=_root(), matrix=matrix, query=query, shown=matrix.search(query),
        limit=FRONT_PAGE_LIMIT, index_url=f"{url_root}simple/", links_url=f"{url_root}links/",
        read_protected=_ctx().access.read_protected))


@web_bp.get("/project/<name>/")
def project(name: str) -> Response:
    matrix = _matrix()
    found = matrix.project(name)
    if found is None:
        abort(404)
    return _page(render("project", root=_root(), matrix=matrix, project=found, query="",
                        simple_url=f"{_root()}simple/{canonicalize_name(name)}/"))


@web_bp.get("/provenance/<project>/<filename>")
def provenance(project: str, filename: str) -> Response:
    f = _ctx().state.current().files.get(filename)
    if f is None or f.project != project:
        abort(404)
    body = {"filename": f.filename, "project": f.project, "version": f.version,
            "sha256": f.sha256, "size": f.size, "upload_time": f.upload_time,
            "origin": f.origin.value, "requires_python": f.requires_python,
            "provenance": dict(f.provenance)}
    resp = Response(json.dumps(body, indent=2) + "\n", mimetype="application/json")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = _ctx().pages.cache_control
    return resp


@web_bp.get("/logs/<path:relative>")
def log(relative: str) -> Response:
    """A build log, as text. Only files under the store's logs/ directory, never a link out."""
    blobs = _ctx().blobs
    if blobs is not None:
        return _log_response(Response(_bucket_log(blobs, relative), mimetype="text/plain"))
    base = (_ctx().root / "logs").resolve()
    joined = safe_join(str(base), relative)
    if joined is None:
        abort(404)
    path = Path(joined).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        abort(404)
    # text/plain and nosniff: a log holds whatever a build printed, and must never be taken
    # for HTML by a browser.
    return _log_response(send_file(path, mimetype="text/plain", conditional=True, max_age=0))


def _bucket_log(blobs: S3Blobs, relative: str) -> bytes:
    parts = relative.split("/")
    if not relative or any(p in ("", ".", "..") for p in parts):
        abort(404)
    try:
        return blobs.read(f"logs/{relative}")
    except StoreError:
        abort(404)


def _log_response(resp: Response) -> Response:
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    private = "private, " if _ctx().access.read_protected else ""
    resp.headers["Cache-Control"] = f"{private}no-cache"
    return resp
