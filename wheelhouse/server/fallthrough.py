"""Upstream fall-through: pages for projects the store does not host, read from an upstream
simple index (HTML or JSON, through ``wheelhouse.simple.client``) and kept for a TTL.

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

import logging
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from packaging.utils import NormalizedName

from wheelhouse.errors import FetchTimeout, UpstreamBusy, UpstreamError, UpstreamTimeout, UsageError
from wheelhouse.server.state import Resource, http_date
from wheelhouse.simple import render
from wheelhouse.simple.client import SimpleClient
from wheelhouse.simple.pages import Candidate, display

log = logging.getLogger(__name__)

#: The API version of fall-through pages: 1.1 would promise a size for every file (PEP 700),
#: which an HTML upstream does not give.
API_VERSION = "1.0"

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


def _row(c: Candidate) -> render.Row:
    # No core metadata (we do not have the bytes) and no PEP 700 fields (API 1.0).
    return render.Row(filename=c.filename, href=c.url, sha256=c.sha256,
                     requires_python=c.requires_python, yanked=c.yanked)


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
    """Fall-through pages, fetched once per name per TTL however many clients ask at once, in
    a pool of threads of their own, so that a slow or hostile upstream can hold only a bounded
    part of the server.

    Found pages live ``ttl`` seconds, "not upstream either" answers ``negative_ttl`` (a name may
    be registered upstream any time). After that a page is *stale*: the request that finds it
    so starts a refresh and waits for it at most ``revalidate_wait`` seconds, then answers
    with the stale page (stale-while-revalidate); if upstream fails, the stale page is kept and
    upstream asked again ``_RETRY_AFTER`` seconds later. A name not cached waits for upstream
    at most ``timeout`` seconds (UpstreamTimeout: 504); upstream's own failure with nothing
    cached is an UpstreamError (502).

    The budget: at most ``max_waiters`` requests of this process wait for upstream at once,
    and at most twice that many fetches run or queue; beyond either a request gets the stale
    page if there is one, else UpstreamBusy (503). Set ``max_waiters`` below the server's
    threads, and the names the store hosts are always answered. At most ``max_entries``
    names are kept, least recently used dropped first, so probing random names cannot
    exhaust memory.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 600.0,
        negative_ttl: float = 60.0,
        timeout: float = 10.0,
        revalidate_wait: float = 1.0,
        max_waiters: int = 16,
        max_entries: int = 10_000,
        client: SimpleClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_waiters < 1 or timeout <= 0:
            raise UsageError("the fall-through needs a positive timeout and waiter budget")
        self.url = check_upstream_url(url)
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.timeout = timeout
        self.revalidate_wait = revalidate_wait
        self.max_waiters = max_waiters
        self.max_entries = max_entries
        # The deadline covers retries and redirects: a client is waiting for this page.
        self.client = client or SimpleClient("index fall-through", deadline=timeout,
                                             pool_size=max_waiters)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[NormalizedName, _Entry] = OrderedDict()
        self._flights: dict[NormalizedName, _Flight] = {}
        self._waiters = threading.BoundedSemaphore(max_waiters)
        self._max_flights = 2 * max_waiters
        # Made on first use, in the process that serves (never before a fork).
        self._pool: ThreadPoolExecutor | None = None

    def resource(self, project: NormalizedName) -> Resource | None:
        if not _VALID_NAME.match(project):
            return None
        with self._lock:
            entry = self._entries.get(project)
            if entry is not None and self._clock() < entry.expires:
                self._entries.move_to_end(project)
                return entry.resource
            flight = self._flights.get(project)
            if flight is None:
                if len(self._flights) >= self._max_flights:
                    return self._stale_or(entry, UpstreamBusy(
                        f"too many upstream requests are in progress to ask for {project}; "
                        "try again shortly"))
                flight = self._start(project, entry)
        if not self._waiters.acquire(blocking=False):
            return self._stale_or(entry, UpstreamBusy(
                f"too many requests are waiting for the upstream index; try {project} again "
                "shortly"))
        try:
            # A client with nothing cached waits for the fetch, whose own deadline ends it
            # first (the margin is for scheduling); one with a stale page waits briefly.
            wait = self.revalidate_wait if entry is not None else self.timeout + 1.0
            finished = flight.done.wait(wait)
        finally:
            self._waiters.release()
        if not finished:
            return self._stale_or(entry, UpstreamTimeout(
                f"the upstream index {display(self.url)} did not answer for {project} within "
                f"{self.timeout:g} s"))
        if flight.error is not None:
            # A fresh exception per waiter: one object raised in many threads would collect
            # all their tracebacks.
            raise type(flight.error)(flight.error.message, hint=flight.error.hint)
        return flight.resource

    @staticmethod
    def _stale_or(entry: _Entry | None, error: UpstreamError) -> Resource | None:
        if entry is not None:
            return entry.resource
        raise error

    def _start(self, project: NormalizedName, old: _Entry | None) -> _Flight:
        """Register a fetch of ``project`` and hand it to the pool (under ``_lock``)."""
        flight = self._flights[project] = _Flight()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.max_waiters,
                                            thread_name_prefix="wheelhouse-upstream")
        self._pool.submit(self._run, project, old, flight)
        return flight

    def _run(self, project: NormalizedName, old: _Entry | None, flight: _Flight) -> None:
        try:
            flight.resource = self._refresh(project, old)
        except UpstreamError as e:
            flight.error = e
        except Exception as e:
            # Whatever a hostile page does to the parsers, the client gets a 502, not a 500.
            log.exception("reading the upstream page of %s failed", project)
            flight.error = UpstreamError(f"the upstream page of {project} could not be read "
                                         f"({type(e).__name__})")
        finally:
            with self._lock:
                self._flights.pop(project, None)
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
        rows = [_row(c) for c in files]
        html_page = render.project_page_html(project, rows, api_version=API_VERSION)
        previous = old.resource if old is not None else None
        if previous is not None and previous.html.etag == html_page.etag:
            # Unchanged upstream: keep Last-Modified, so If-Modified-Since still says 304.
            resource = previous
        else:
            resource = Resource(
                html=html_page,
                json=render.project_page_json(project, rows, api_version=API_VERSION),
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
        try:
            found = self.client.project_page(self.url, project)
        except FetchTimeout as e:
            raise UpstreamTimeout(f"the upstream index did not answer for {project} in time: "
                                  f"{e.message}") from None
        except UpstreamError as e:
            raise UpstreamError(f"the upstream index failed for {project}: {e.message}") from None
        return None if found is None else _usable(project, found)
