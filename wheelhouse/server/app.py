"""The Flask application: routes for the simple index, file downloads, the flat find-links page,
a health check and, when an upload token is configured, the legacy upload API.

The simple pages and ``.metadata`` files are normally answered by ``HotPath`` before Flask sees
the request; the views below give the same answers (they call the same functions) for whoever
runs the app without that layer, and Flask adds 405s for other methods. Reads can be made to
need a token (``ServerOptions.read_token``); the upstream fall-through
(``ServerOptions.upstream_url``) is off by default and its policy is explained in
``wheelhouse.server.fallthrough``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request

from wheelhouse.errors import UsageError
from wheelhouse.options import ServerOptions
from wheelhouse.server.auth import Access, check_token
from wheelhouse.server.bodies import UploadSlots
from wheelhouse.server.fallthrough import UpstreamPages
from wheelhouse.server.files import FileCache, answer_download, body_of
from wheelhouse.server.hot import READ_CHECKED, HotPath, PageOptions, answer_simple, not_modified
from wheelhouse.server.reply import Reply
from wheelhouse.server.state import IndexState
from wheelhouse.server.upload import UploadOptions, handle_upload
from wheelhouse.server.web import WebContext, register
from wheelhouse.store.backends import open_store
from wheelhouse.store.store import Store

log = logging.getLogger(__name__)

bp = Blueprint("index", __name__)


@dataclass(frozen=True, kw_only=True)
class ServerContext:
    """What the views need, kept in ``app.extensions["wheelhouse"]`` (no module globals)."""

    store: Store
    state: IndexState
    pages: PageOptions
    access: Access
    uploads: UploadOptions
    fallback: UpstreamPages | None
    files: FileCache


def _ctx() -> ServerContext:
    ctx: ServerContext = current_app.extensions["wheelhouse"]
    return ctx


def _response(reply: Reply) -> Response:
    resp = Response(reply.body, status=reply.status, headers=list(reply.headers))
    if reply.status.startswith("304"):
        # Werkzeug counts the empty body as Content-Length: 0; a 304 describes the full
        # representation, so send no length at all, as the hot path does.
        resp.headers.pop("Content-Length", None)
    return resp


@bp.before_request
def _check_read_access() -> Response | None:
    if request.environ.get(READ_CHECKED) or request.endpoint == "index.upload":
        return None
    denied = _ctx().access.read_denied(request.environ)
    return _response(denied) if denied is not None else None


@bp.get("/simple/", strict_slashes=False)
@bp.get("/simple/<path:project>")
def simple(project: str | None = None) -> Response:
    ctx = _ctx()
    reply = answer_simple(ctx.state.current(), request.environ, ctx.pages, ctx.fallback)
    if reply is None:  # pragma: no cover - the routes only match /simple paths
        abort(404)
    return _response(reply)


@bp.get("/files/<project>/<filename>")
def download(project: str, filename: str) -> Response:
    """The same answer as the hot path's (``wheelhouse.server.files``)."""
    ctx = _ctx()
    got = answer_download(ctx.state.current(), ctx.store, ctx.files, project, filename,
                          request.environ)
    # An iterable, never bytes: werkzeug would take the Content-Length from bytes (0 for a
    # HEAD of a streamed file); it drops the body of a HEAD itself.
    body: Iterable[bytes] = [got.body]
    if got.span:
        body = [] if request.method == "HEAD" else body_of(got)
    resp = Response(body, status=got.status, headers=list(got.headers),
                    direct_passthrough=True)
    if got.status.startswith("304"):
        resp.headers.pop("Content-Length", None)
    return resp


@bp.get("/links/")
def links() -> Response:
    """The flat page for ``pip --find-links``/``uv --find-links``: always text/html."""
    ctx = _ctx()
    snapshot = ctx.state.current()
    page = snapshot.links
    headers = [
        ("ETag", page.etag),
        ("Last-Modified", snapshot.changed_at),
        ("Cache-Control", ctx.pages.cache_control),
    ]
    if not_modified(request.environ, page.etag, snapshot.changed_at):
        return _response(Reply(status="304 Not Modified", headers=tuple(headers)))
    return Response(page.body, mimetype="text/html", headers=headers)


# Both spellings, never a redirect: twine aborts on any 3xx, and users copy either form.
@bp.post("/legacy/", strict_slashes=False)
def upload() -> Response:
    ctx = _ctx()
    reply = handle_upload(
        request.environ, store=ctx.store, access=ctx.access, options=ctx.uploads,
        on_published=ctx.state.refresh,
    )
    return _response(reply)


@bp.get("/health")
def health() -> Response:
    ctx = _ctx()
    if not ctx.access.may_read(request.environ):
        # Anyone may ask whether the index is up; what it holds is for its readers.
        resp = jsonify({"status": "ok"})
        resp.headers["Cache-Control"] = "no-store"
        return resp
    snapshot = ctx.state.current()
    # A shared store: whether its database and bucket answer (a replica that cannot reach
    # them is taken out of the balancer by its 503).
    checks = ctx.store.health()
    resp = jsonify(
        {
            "status": "ok" if all(checks.values()) else "degraded",
            "generation": snapshot.generation,
            "projects": len(snapshot.projects),
            "files": len(snapshot.files),
            "uploads": ctx.access.uploads_enabled,
            # Whether, not where: /health is open even when reading needs a token.
            "fall_through": ctx.fallback is not None,
            **{name: "ok" if up else "down" for name, up in checks.items()},
        }
    )
    if not all(checks.values()):
        resp.status = 503
    resp.headers["Cache-Control"] = "no-store"
    return resp


def create_app(options: ServerOptions) -> Flask:
    """A Flask app serving the store at ``options.store`` (see ``ServerOptions`` for what
    each option does; host, port and the server's own options are not used here).

    Raises StoreError if there is no store there (and no upload token), UsageError for an
    unusable token or upstream URL.
    """
    access = Access(
        upload_token=check_token(options.upload_token, what="upload"),
        read_token=check_token(options.read_token, what="read"),
    )
    if options.max_upload_bytes < 1:
        raise UsageError(f"max_upload_bytes must be positive, not {options.max_upload_bytes}")
    if options.upload_slots < 1 or options.upload_stall_timeout <= 0:
        raise UsageError("upload_slots and upload_stall_timeout must be positive")
    fallback = (UpstreamPages(options.upstream_url, ttl=options.upstream_ttl,
                              timeout=options.upstream_timeout,
                              max_waiters=options.upstream_waiter_budget())
                if options.upstream_url else None)
    store = open_store(options.store, catalogue=options.catalogue,
                       readonly=not access.uploads_enabled)
    if access.read_protected and not store.readonly:
        # An export of this store must then ask for the token too (wheelhouse.export).
        store.mark_read_protected()
    state = IndexState(store, refresh_interval=options.refresh_interval)
    # Behind a read token, pages are for their reader only. "must-revalidate" alone would let
    # a shared cache keep an answer to an authenticated request (RFC 9111 §3.5); "private"
    # does not. Files need no change: their Cache-Control has no such permission.
    privacy = "private, " if access.read_protected else ""
    pages = PageOptions(
        cache_control=f"{privacy}max-age={max(options.page_max_age, 0)}, must-revalidate"
    )
    if options.presign_endpoint and not options.presign_endpoint.startswith(
            ("http://", "https://")):
        raise UsageError(f"presign_endpoint {options.presign_endpoint} is not an http(s) URL",
                         hint="give the bucket's public endpoint, e.g. https://s3.example.com")
    files = FileCache(budget=options.file_cache_bytes, presign=options.presign_downloads,
                      presign_endpoint=options.presign_endpoint)
    app = Flask("wheelhouse.server")
    app.extensions["wheelhouse"] = ServerContext(
        store=store, state=state, pages=pages, access=access,
        uploads=UploadOptions(
            max_upload_bytes=options.max_upload_bytes,
            allow_local_versions=options.allow_local_versions,
            allow_build_tags=options.allow_build_tags,
            stall_timeout=options.upload_stall_timeout,
            slots=UploadSlots(options.upload_slots,
                              stall_timeout=options.upload_stall_timeout),
        ),
        fallback=fallback,
        files=files,
    )
    app.register_blueprint(bp)
    register(app, WebContext(state=state, root=Path(store.root), access=access, pages=pages,
                             catalogue=options.catalogue, blobs=store.blobs))
    if options.hot_path:
        app.wsgi_app = HotPath(  # type: ignore[method-assign]
            app.wsgi_app, state, pages, access=access, fallback=fallback, files=files
        )
    return app
