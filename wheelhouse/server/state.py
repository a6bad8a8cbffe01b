"""What the server shows: an immutable snapshot of the catalogue with every simple page already
rendered, and the holder that swaps in a new snapshot when the store's generation moves.

Requests never scan directories or hash files; they read the current snapshot. Each request
reads the store's change marker (one ``pread``), so a publish by any process (another granian
worker, a build) is served by the very next request: once an upload is answered 200, every
worker lists it. Stores without a marker are polled once per ``refresh_interval`` instead (one
indexed SQLite read), as a fallback for writers that do not announce their commits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, formatdate
from functools import cached_property

from packaging.utils import NormalizedName

from wheelhouse.errors import StoreError
from wheelhouse.server.reply import Reply
from wheelhouse.simple import render
from wheelhouse.simple.render import MediaType, Page
from wheelhouse.store.model import StoredFile
from wheelhouse.store.protocols import StoreReader

log = logging.getLogger(__name__)


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def upload_http_date(f: StoredFile) -> str:
    """Last-Modified of a file: its upload time, which never changes after publication."""
    try:
        return format_datetime(datetime.fromisoformat(f.upload_time), usegmt=True)
    except (ValueError, TypeError):
        # An unparseable catalogue value must not break downloads; Last-Modified is advisory.
        return http_date(0)


@dataclass(frozen=True, kw_only=True)
class Resource:
    """One simple page in both serialisations, with the time its content last changed."""

    html: Page
    json: Page
    last_modified: str
    #: the answers made from it, per (media type, Cache-Control): made on first request
    #: (``hot._page_replies``), as the pages are never changed once rendered.
    replies: dict[tuple[MediaType, str], PageReplies] = field(
        default_factory=dict, compare=False, repr=False)

    def page(self, media: MediaType) -> Page:
        return self.json if media.is_json else self.html


@dataclass(frozen=True, kw_only=True)
class PageReplies:
    """A page's 200 and 304 answers, and the validators a conditional request is compared
    with."""

    etag: str
    last_modified: str
    ok: Reply
    not_modified: Reply


#: What decides a page's answer: PATH_INFO, Accept, the query string, and Cache-Control.
PageRequest = tuple[str, str | None, str, str]


@dataclass(frozen=True, kw_only=True)
class ProjectEntry:
    files: tuple[StoredFile, ...]
    resource: Resource


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """Everything the index shows at one store generation. What it shows never changes once
    built; the answers it remembers (``links``, ``answered``) are derived from it."""

    generation: int
    root: Resource
    projects: Mapping[NormalizedName, ProjectEntry]
    files: Mapping[str, StoredFile]
    changed_at: str
    #: page answers already decided, by request (see ``hot.answer_simple``): made while
    #: serving, bounded there, and gone with the snapshot when the store changes.
    answered: dict[PageRequest, PageReplies] = field(
        default_factory=dict, compare=False, repr=False)

    @cached_property
    def links(self) -> Page:
        # Rendered on first use: the flat page holds every file, and most deployments only
        # serve /simple/. A race renders it twice, which is harmless.
        return render.links_html(self.files.values())


def _render_project(
    project: NormalizedName, files: tuple[StoredFile, ...], last_modified: str
) -> ProjectEntry:
    return ProjectEntry(
        files=files,
        resource=Resource(
            html=render.project_html(project, files),
            json=render.project_json(project, files),
            last_modified=last_modified,
        ),
    )


def build_snapshot(
    generation: int,
    files: Iterable[StoredFile],
    previous: Snapshot | None,
    *,
    now: float | None = None,
) -> Snapshot:
    """Render a snapshot, reusing the pages of every project whose files did not change.

    Last-Modified of a page is the time this process first saw its current content. That is
    never earlier than the real change (a yank leaves no timestamp in the catalogue), so an
    If-Modified-Since answer is never wrongly 304.
    """
    stamp = http_date(time.time() if now is None else now)
    grouped: dict[NormalizedName, list[StoredFile]] = {}
    by_name: dict[str, StoredFile] = {}
    for f in files:
        grouped.setdefault(f.project, []).append(f)
        by_name[f.filename] = f
    old_projects = previous.projects if previous is not None else {}
    projects: dict[NormalizedName, ProjectEntry] = {}
    rerendered = 0
    for project, project_files in grouped.items():
        key = tuple(sorted(project_files, key=lambda f: f.filename))
        old = old_projects.get(project)
        if old is not None and old.files == key:
            projects[project] = old
        else:
            projects[project] = _render_project(project, key, stamp)
            rerendered += 1
    if previous is not None and previous.projects.keys() == projects.keys():
        root = previous.root
    else:
        names = sorted(projects)
        root = Resource(
            html=render.project_list_html(names),
            json=render.project_list_json(names),
            last_modified=stamp,
        )
    if previous is not None:
        log.info(
            "store generation %d: %d project pages re-rendered, %d kept",
            generation, rerendered, len(projects) - rerendered,
        )
    return Snapshot(
        generation=generation,
        root=root,
        projects=projects,
        files=by_name,
        changed_at=stamp,
    )


class IndexState:
    """Holds the current snapshot and refreshes it from the store, safely across threads.

    The thread that finds a check due does it while the others keep answering from the
    snapshot they already have; swapping the reference is atomic, so readers need no lock.
    """

    def __init__(self, store: StoreReader, *, refresh_interval: float = 0.5) -> None:
        self.store = store
        self.refresh_interval = refresh_interval
        self._lock = threading.Lock()
        try:
            # The marker before the catalogue: a commit in between moves the marker again,
            # and the next request re-reads.
            self._token = store.change_token()
            self._snapshot = self._load(None)
        except (StoreError, OSError) as e:
            raise StoreError(
                f"cannot read the catalogue of the store at {store.root}: {e}",
                hint="check that the path is a wheelhouse store and readable by this user",
            ) from None
        self._next_check = time.monotonic() + refresh_interval

    def _load(self, previous: Snapshot | None) -> Snapshot:
        # Read the generation before the rows: a publish in between makes the rows newer than
        # the recorded generation, and the next check re-reads them. The opposite order could
        # record a generation whose rows we never saw.
        generation = self.store.generation()
        return build_snapshot(generation, self.store.files(), previous)

    def current(self) -> Snapshot:
        token = self.store.change_token()
        if token != self._token and token is not None:
            return self._follow(token)
        now = time.monotonic()
        if now < self._next_check or not self._lock.acquire(blocking=False):
            return self._snapshot
        try:
            if now >= self._next_check:
                self._refresh()
        finally:
            self._lock.release()
        return self._snapshot

    def _follow(self, token: int) -> Snapshot:
        # Blocking: a request that comes after a commit must see it (read your writes), so
        # it waits for the thread already re-reading instead of answering from before.
        with self._lock:
            if self._token != token:
                self._refresh(token)
        return self._snapshot

    def refresh(self) -> Snapshot:
        """Check the store now (tests, and callers that just published)."""
        with self._lock:
            self._refresh(self.store.change_token())
        return self._snapshot

    def _refresh(self, token: int | None = None) -> None:
        """Re-read the catalogue if it moved, under ``_lock``. The marker value ``token``
        (read before the catalogue) is recorded only once the snapshot that includes its
        commit is in place: recorded earlier, a request arriving meanwhile would find the
        marker "seen" and answer from the old snapshot (parallel uploaders got 404 for
        their new project 1-13 ms after its 200, while another commit was being rendered).
        After a failed read it is not recorded, so the next request tries again."""
        try:
            if self.store.generation() != self._snapshot.generation:
                self._snapshot = self._load(self._snapshot)
        except Exception:
            # A busy or briefly unreadable catalogue must not take the index down: keep
            # serving what we have and try again at the next interval.
            log.exception("could not re-read the store at %s; serving the previous state",
                          self.store.root)
        else:
            if token is not None:
                self._token = token
        self._next_check = time.monotonic() + self.refresh_interval
