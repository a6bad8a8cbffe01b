"""Upstream fall-through: pages for projects the store does not host, read from an upstream
simple index (HTML or JSON, with ``wheelhouse.upstream``'s parsers) and kept for a TTL.

Dependency confusion. A project the store hosts is served **only** from the store: its page
never merges upstream files, and the upstream is not even asked about it. Everything else
falls through. This is safe for both kinds of client:

* uv (``first-index``) uses the first index that answers a name and moves on only after a 404.
  Because we answer every hosted name ourselves, uv never looks for it elsewhere, so a look-alike
  package uploaded upstream under one of our names cannot be picked up.
* pip merges every index it is given. Pointed at this index alone (``--index-url``), it sees
  exactly one answer per name: the store's for hosted names, upstream's for the rest. Adding
  PyPI as ``--extra-index-url`` next to us re-opens the risk, as pip documents; with the
  fall-through on, there is no reason to.

What users give up: for a hosted project, upstream versions the store does not hold are
invisible (``pip install foo==2.0`` fails if only 1.0 is in the store). The remedy is to put
them in the store, with ``wheelhouse build`` (which fetches fitting upstream wheels or builds
them) or an upload. Names we do not host but somebody later uploads stop falling through at
the next store generation. The project list (``/simple/``) and ``/links/`` show hosted
projects only: upstream's list is far too large to mirror.

Files are linked, not proxied: hrefs point at the upstream's own file URLs with its sha256.
Files are immutable and the hash travels in the link, so pip and uv verify the bytes wherever
they come from; no worker thread is held by a long upstream download, no cache grows without
bound, and Range/HEAD requests (uv's way to read metadata when there is no PEP 658 file, as on
this mirror) go to a server made for them. The cost: clients must reach the upstream's file
host, and an upstream that needs credentials cannot be used (we would leak them in links), so
such URLs are refused. Metadata (PEP 658) is not advertised for upstream files: we do not have
their bytes. JSON pages say API 1.0, since an HTML upstream gives no sizes for PEP 700.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import requests
from packaging.utils import NormalizedName
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from wheelhouse import __version__
from wheelhouse.errors import UpstreamError, UsageError
from wheelhouse.index import Page
from wheelhouse.server.state import Resource, http_date
from wheelhouse.upstream import Candidate, parse_html_links, parse_json_page

log = logging.getLogger(__name__)

#: The API version of fall-through pages: 1.1 would promise a size for every file (PEP 700),
#: which an HTML upstream does not give.
API_VERSION = "1.0"

_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
)
_JSON = "application/vnd.pypi.simple.v1+json"

# The name-format rule of the packaging specs; anything else is not asked upstream at all.
_VALID_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE)

#: After a failed refresh, how long a stale page is served before upstream is asked again.
_RETRY_AFTER = 30.0


def check_upstream_url(url: str) -> str:
    """The base URL of an upstream simple index, ending in ``/``. Raises UsageError."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"the upstream index URL {url!r} is not an http(s) URL",
            hint="give the simple index root, e.g. https://pypi.org/simple/",
        )
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            "the upstream index URL carries credentials, which file links would reveal to "
            "every client",
            hint="use an upstream that needs no credentials, or build what you need into the "
            "store with `wheelhouse build`",
        )
    if parts.query or parts.fragment:
        raise UsageError(f"the upstream index URL {url!r} has a query or fragment")
    return url if url.endswith("/") else url + "/"


# -- rendering --------------------------------------------------------------------------------


def _href(c: Candidate) -> str:
    return f"{c.url}#sha256={c.sha256}" if c.sha256 else c.url


def _anchor(c: Candidate) -> str:
    attrs = [f'href="{html.escape(_href(c))}"']
    if c.requires_python:
        attrs.append(f'data-requires-python="{html.escape(c.requires_python)}"')
    if c.yanked is not None:
        attrs.append(f'data-yanked="{html.escape(c.yanked)}"')
    return f"<a {' '.join(attrs)}>{html.escape(c.filename)}</a><br>"


def _html_page(project: NormalizedName, files: Iterable[Candidate]) -> Page:
    lines = "".join(f"    {_anchor(c)}\n" for c in files)
    body = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta charset="utf-8">\n'
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>Links for {html.escape(project)}</title>\n"
        "  </head>\n  <body>\n"
        f"    <h1>Links for {html.escape(project)}</h1>\n"
        f"{lines}  </body>\n</html>\n"
    )
    return Page.of(body.encode("utf-8"))


def _json_page(project: NormalizedName, files: Iterable[Candidate]) -> Page:
    entries = []
    for c in files:
        entry: dict[str, object] = {
            "filename": c.filename,
            "url": c.url,
            "hashes": {"sha256": c.sha256} if c.sha256 else {},
        }
        if c.requires_python:
            entry["requires-python"] = c.requires_python
        entry["yanked"] = (c.yanked or True) if c.yanked is not None else False
        entries.append(entry)
    doc = {"meta": {"api-version": API_VERSION}, "name": project, "files": entries}
    return Page.of(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _usable(project: NormalizedName, candidates: Iterable[Candidate]) -> list[Candidate]:
    # Only this project's files (a page is about one name), only http(s) links (never
    # javascript: or file: from a hostile upstream), one entry per filename, stable order.
    chosen: dict[str, Candidate] = {}
    for c in candidates:
        scheme = urllib.parse.urlsplit(c.url).scheme
        if c.project == project and scheme in ("http", "https"):
            chosen.setdefault(c.filename, c)
    return [chosen[name] for name in sorted(chosen)]


# -- the cache --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Entry:
    resource: Resource | None
    #: monotonic time after which upstream is asked again.
    expires: float


@dataclass(kw_only=True)
class _Flight:
    """One upstream request that concurrent askers for the same name wait on."""

    done: threading.Event = field(default_factory=threading.Event)
    resource: Resource | None = None
    error: UpstreamError | None = None


class UpstreamPages:
    """Fall-through pages, fetched once per name per TTL however many clients ask at once.

    Found pages live ``ttl`` seconds, "not upstream either" answers ``negative_ttl`` (a name may
    be registered upstream any time). If upstream fails, the last page is served stale and
    upstream is asked again ``_RETRY_AFTER`` seconds later; with nothing cached the failure is
    raised (the server answers 502). At most ``max_entries`` names are kept, least recently
    used dropped first, so probing random names cannot exhaust memory.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 600.0,
        negative_ttl: float = 60.0,
        timeout: float = 15.0,
        max_entries: int = 10_000,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = check_upstream_url(url)
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.timeout = timeout
        self.max_entries = max_entries
        self.session = session or _session()
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[NormalizedName, _Entry] = OrderedDict()
        self._flights: dict[NormalizedName, _Flight] = {}

    def resource(self, project: NormalizedName) -> Resource | None:
        if not _VALID_NAME.match(project):
            return None
        with self._lock:
            entry = self._entries.get(project)
            if entry is not None and self._clock() < entry.expires:
                self._entries.move_to_end(project)
                return entry.resource
            flight = self._flights.get(project)
            leader = flight is None
            if flight is None:
                flight = self._flights[project] = _Flight()
        if not leader:
            # Bounded: the leader's own request times out well before this.
            if not flight.done.wait(timeout=self.timeout * 4):
                raise UpstreamError(f"timed out waiting for the upstream page of {project}")
            if flight.error is not None:
                # A fresh exception per waiter: one object raised in many threads would
                # collect all their tracebacks.
                raise UpstreamError(flight.error.message, hint=flight.error.hint)
            return flight.resource
        try:
            flight.resource = self._refresh(project, entry)
            return flight.resource
        except UpstreamError as e:
            flight.error = e
            raise
        finally:
            with self._lock:
                del self._flights[project]
            flight.done.set()

    def _refresh(self, project: NormalizedName, old: _Entry | None) -> Resource | None:
        try:
            files = self._fetch(project)
        except UpstreamError as e:
            if old is None:
                raise
            log.warning("%s; serving the page cached earlier", e)
            self._store(project, old.resource, self._clock() + _RETRY_AFTER)
            return old.resource
        if files is None:
            self._store(project, None, self._clock() + self.negative_ttl)
            return None
        html_page = _html_page(project, files)
        previous = old.resource if old is not None else None
        if previous is not None and previous.html.etag == html_page.etag:
            # Unchanged upstream: keep Last-Modified, so If-Modified-Since still says 304.
            resource = previous
        else:
            resource = Resource(
                html=html_page,
                json=_json_page(project, files),
                last_modified=http_date(time.time()),
            )
        self._store(project, resource, self._clock() + self.ttl)
        return resource

    def _store(self, project: NormalizedName, resource: Resource | None, expires: float) -> None:
        with self._lock:
            self._entries[project] = _Entry(resource=resource, expires=expires)
            self._entries.move_to_end(project)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def _fetch(self, project: NormalizedName) -> list[Candidate] | None:
        """The project's files upstream, or None if upstream does not know the name."""
        url = urllib.parse.urljoin(self.url, f"{quote(project, safe='')}/")
        try:
            resp = self.session.get(url, headers={"Accept": _ACCEPT}, timeout=self.timeout)
        except requests.RequestException as e:
            raise UpstreamError(f"the upstream index {self.url} failed for {project}: "
                                f"{type(e).__name__}") from None
        with resp:
            if resp.status_code in (404, 410):
                return None
            if resp.status_code != 200:
                raise UpstreamError(
                    f"the upstream index answered HTTP {resp.status_code} for {project}"
                )
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype == _JSON:
                found = parse_json_page(resp.content, resp.url, self.url)
            else:
                found = parse_html_links(_page_text(resp), resp.url, self.url)
        return _usable(project, found)


def _page_text(resp: requests.Response) -> str:
    # requests assumes ISO-8859-1 for text/html without a charset (the mirror sends none);
    # simple pages are UTF-8, and a yank reason need not be ASCII.
    declared = "charset" in resp.headers.get("Content-Type", "").lower()
    try:
        return resp.content.decode((resp.encoding if declared else None) or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return resp.content.decode("utf-8", "replace")


def _session() -> requests.Session:
    session = requests.Session()
    # Retries only where a second try can help and quickly: a client is waiting.
    retry = Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504),
                  allowed_methods=("GET",))
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=32)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"wheelhouse/{__version__} (index fall-through)"
    return session
