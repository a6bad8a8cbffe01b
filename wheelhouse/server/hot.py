"""Answers for the hot, precomputed resources: ``/simple/``, ``/simple/<project>/`` (with
negotiation, redirects and conditional requests) and, through ``wheelhouse.server.files``,
``/files/<project>/<file>`` and its ``.metadata``.

The same functions back the Flask views and the WSGI layer (``HotPath``) that answers these
paths before Flask's routing; Flask's per-request machinery, not Python, limits throughput on
small cached pages and files, so skipping it for them is what lets the index approach a
static server. Everything else falls through to Flask. Names the store does not host go to the
optional ``Fallback`` (the upstream fall-through), never the other way round.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, quote

from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse.errors import UpstreamBusy, UpstreamError, UpstreamTimeout
from wheelhouse.server.auth import Access
from wheelhouse.server.files import (
    Download,
    FileCache,
    answer_download,
    body_of,
    etag_listed,
    split_files_path,
)
from wheelhouse.server.reply import Reply, text_reply
from wheelhouse.server.state import (
    IndexState,
    PageReplies,
    PageRequest,
    Resource,
    Snapshot,
)
from wheelhouse.simple import render
from wheelhouse.simple.render import MediaType

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

#: Set in the WSGI environ once the read access check passed, so Flask does not repeat it.
READ_CHECKED = "wheelhouse.read_checked"


# -- conditional requests ---------------------------------------------------------------------


def not_modified(environ: WSGIEnvironment, etag: str, last_modified: str) -> bool:
    """True when the client's copy is current. If-Modified-Since counts only without
    If-None-Match, as RFC 9110 §13.2.2 orders."""
    inm = environ.get("HTTP_IF_NONE_MATCH")
    if inm is not None:
        return etag_listed(inm, etag)
    ims = environ.get("HTTP_IF_MODIFIED_SINCE")
    if ims:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


# -- simple pages -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PageOptions:
    #: Cache-Control for simple pages. pip ≥ 26.2 and uv honour it, so anything above a few
    #: seconds hides new uploads from them; with an ETag, revalidation costs a 304.
    cache_control: str = "max-age=0, must-revalidate"


def _variant_etag(etag: str, media: MediaType) -> str:
    # text/html and the v1+html alias carry the same bytes under different Content-Types. A
    # strong ETag names one representation, so the alias gets its own: otherwise a cache that
    # revalidates one with the other's tag would be told to reuse the wrong Content-Type.
    if media is MediaType.V1_HTML:
        return etag[:-1] + '.v1html"'
    return etag


#: Page answers a snapshot remembers by request (``Snapshot.answered``). Real clients send a
#: few Accept headers, so this covers every page in a few variants; a client inventing
#: headers fills it and then is answered the slower way, with the memory bounded.
_ANSWERED_LIMIT = 16384


def _conditional(environ: WSGIEnvironment, replies: PageReplies) -> Reply:
    if not_modified(environ, replies.etag, replies.last_modified):
        return replies.not_modified
    return replies.ok


def _page_reply(
    environ: WSGIEnvironment, resource: Resource, options: PageOptions,
    remember: dict[PageRequest, PageReplies] | None = None,
) -> Reply:
    """The answer for ``resource``; with ``remember`` (the snapshot's answers, for pages the
    store hosts), the replies chosen are kept there under what chose them."""
    query = environ.get("QUERY_STRING", "")
    # The spec's own example is "?format=application/vnd.pypi.simple.v1+json" unencoded, and
    # form decoding would turn that "+" into a space, which no media type contains.
    fmt = parse_qs(query.replace("+", "%2B")).get("format", [None])[-1] if query else None
    media = render.negotiate(environ.get("HTTP_ACCEPT"), fmt)
    if media is None:
        return text_reply(
            "406 Not Acceptable",
            "none of the requested media types is served here; acceptable: "
            + ", ".join(render.available_types()),
            ("Vary", "Accept"),
        )
    replies = _page_replies(resource, media, options)
    if remember is not None and len(remember) < _ANSWERED_LIMIT:
        remember[_page_request(environ, options)] = replies
    return _conditional(environ, replies)


def _page_request(environ: WSGIEnvironment, options: PageOptions) -> PageRequest:
    return (environ.get("PATH_INFO", ""), environ.get("HTTP_ACCEPT"),
            environ.get("QUERY_STRING", ""), options.cache_control)


def _page_replies(resource: Resource, media: MediaType, options: PageOptions) -> PageReplies:
    """The answers of one page variant, made once per snapshot: a request then costs a lookup
    instead of building headers (a third of the Python time of a page request)."""
    key = (media, options.cache_control)
    found = resource.replies.get(key)
    if found is not None:
        return found
    page = resource.page(media)
    etag = _variant_etag(page.etag, media)
    # A 304 repeats only what updates the cached copy (RFC 9110 §15.4.5): with an ETag,
    # Last-Modified is left out, as werkzeug does for the Flask-routed answers.
    validators = (
        ("ETag", etag),
        ("Cache-Control", options.cache_control),
        ("Vary", "Accept"),
    )
    found = PageReplies(
        etag=etag,
        last_modified=resource.last_modified,
        ok=Reply(
            status="200 OK",
            headers=(
                ("Content-Type", render.content_type_header(media)),
                ("Content-Length", str(len(page.body))),
                ("Last-Modified", resource.last_modified),
                *validators,
            ),
            body=page.body,
        ),
        not_modified=Reply(status="304 Not Modified", headers=validators),
    )
    resource.replies[key] = found  # two threads may both make it: the same answer
    return found


def _redirect(environ: WSGIEnvironment, path: str) -> Reply:
    script = quote(environ.get("SCRIPT_NAME", "").encode("latin-1"), safe="/")
    query = environ.get("QUERY_STRING", "")
    location = script + path + (f"?{query}" if query else "")
    return text_reply("301 Moved Permanently", f"moved to {location}", ("Location", location))


def _not_found(what: str) -> Reply:
    # uv's first-index strategy moves on to the next index only on 404, so "unknown" is always
    # 404, never an empty 200 or a 401/403. Short caching: the project may be published soon.
    return text_reply("404 Not Found", what, ("Cache-Control", "max-age=0, must-revalidate"))


def _wsgi_path(environ: WSGIEnvironment) -> str | None:
    """PATH_INFO as text. WSGI hands over the decoded bytes as latin-1; names are UTF-8."""
    try:
        path: str = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None
    return path


class Fallback(Protocol):
    """Pages for projects the store does not host (the upstream fall-through)."""

    def resource(self, project: NormalizedName) -> Resource | None:
        """The page of ``project``, or None if it is unknown there too. Raises UpstreamError
        when that cannot be told (upstream down and nothing cached)."""
        ...


def _upstream_failed(e: UpstreamError) -> Reply:
    no_store = ("Cache-Control", "no-store")
    if isinstance(e, UpstreamBusy):
        # pip and uv retry a 503; the hosted names are answered meanwhile.
        return text_reply("503 Service Unavailable", f"{e}", no_store, ("Retry-After", "2"))
    if isinstance(e, UpstreamTimeout):
        return text_reply("504 Gateway Timeout", f"{e}", no_store)
    return text_reply("502 Bad Gateway", f"{e}", no_store)


def answer_simple(
    snapshot: Snapshot,
    environ: WSGIEnvironment,
    options: PageOptions,
    fallback: Fallback | None = None,
) -> Reply | None:
    """The answer for a GET of ``/simple`` or anything below it; None for other paths.

    A project the store hosts is answered from the store alone; ``fallback`` is asked only
    about names the store does not host (see ``wheelhouse.server.fallthrough`` for why).
    """
    # A request like one answered before (same path, Accept and query) gets the same
    # answer: the snapshot is immutable, and this skips decoding, routing and negotiation.
    known = snapshot.answered.get(_page_request(environ, options))
    if known is not None:
        return _conditional(environ, known)
    path = _wsgi_path(environ)
    if path is None:
        return None
    if path == "/simple":
        return _redirect(environ, "/simple/")
    if not path.startswith("/simple/"):
        return None
    rest = path[len("/simple/"):]
    if not rest:
        return _page_reply(environ, snapshot.root, options, snapshot.answered)
    name, slash, extra = rest.partition("/")
    if extra or not name:
        return _not_found(f"no such page: {path}")
    # Most requests use the normalized name already; skip the regex for them.
    entry = snapshot.projects.get(NormalizedName(name))
    normalized = NormalizedName(name) if entry is not None else canonicalize_name(name)
    if entry is None:
        entry = snapshot.projects.get(normalized)
    remember = None
    if entry is not None:
        resource = entry.resource
        remember = snapshot.answered
    elif fallback is None:
        return _not_found(f"no project named {name!r} in this index")
    else:
        try:
            found = fallback.resource(normalized)
        except UpstreamError as e:
            # Not 404: that would send uv on to the next index as if the name were free, and
            # not cached, so the next request tries again.
            return _upstream_failed(e)
        if found is None:
            return _not_found(f"no project named {name!r} in this index or upstream")
        resource = found
    if name != normalized or not slash:
        return _redirect(environ, f"/simple/{normalized}/")
    return _page_reply(environ, resource, options, remember)


# -- the WSGI layer ---------------------------------------------------------------------------


class HotPath:
    """WSGI middleware answering GET/HEAD of the hot resources; the rest goes to ``app``.

    It also refuses unauthenticated reads when the index needs a read token, for everything
    it passes on as well (Flask checks again only what did not come through here).
    """

    def __init__(
        self,
        app: WSGIApplication,
        state: IndexState,
        options: PageOptions,
        *,
        access: Access | None = None,
        fallback: Fallback | None = None,
        files: FileCache | None = None,
    ) -> None:
        self.app = app
        self.state = state
        self.options = options
        self.access = access or Access()
        self.fallback = fallback
        self.files = files or FileCache()

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "GET" or method == "HEAD":
            reply: Reply | Download | None = self.access.read_denied(environ)
            if reply is None:
                environ[READ_CHECKED] = True
                reply = self._answer(environ)
            if reply is not None:
                body: Iterable[bytes] = [] if method == "HEAD" else [reply.body]
                if method != "HEAD" and isinstance(reply, Download) and reply.span:
                    try:
                        body = body_of(reply)
                    except OSError as e:
                        log.error("%s is published but unreadable: %s", reply.path, e)
                        reply = text_reply("500 Internal Server Error", "cannot read the file")
                        body = [reply.body]
                start_response(reply.status, list(reply.headers))
                return body
        return self.app(environ, start_response)

    def _answer(self, environ: WSGIEnvironment) -> Reply | Download | None:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/files/"):
            text = _wsgi_path(environ)
            parts = split_files_path(text) if text is not None else None
            if parts is None:
                return None
            return answer_download(self.state.current(), self.state.store, self.files,
                                   parts[0], parts[1], environ)
        if path.startswith("/simple"):
            return answer_simple(self.state.current(), environ, self.options, self.fallback)
        return None
