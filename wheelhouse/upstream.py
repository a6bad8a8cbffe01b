"""Reading upstream sources for a build: simple indexes (PEP 503 HTML or PEP 691 JSON, over
HTTP or ``file:``) and find-links locations (local directories or HTML pages), all HTTP through
``wheelhouse.simple.client``; downloads with their hashes checked, and wheels' METADATA.

Upstreams vary (PyPI mirrors without JSON or PEP 658, Artifactory, Nexus), so pages are parsed
from whichever of HTML or JSON comes back, and nothing relies on metadata files being there.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse.errors import FetchError, UpstreamError
from wheelhouse.simple.client import SimpleClient
from wheelhouse.simple.pages import Candidate, candidate_from, parse_html_links


class Upstream:
    """Candidates for a project from every configured source; pages fetched once per run."""

    def __init__(
        self,
        *,
        index_urls: Sequence[str],
        find_links: Sequence[str] = (),
        timeout: float = 60.0,
        client: SimpleClient | None = None,
    ) -> None:
        self.index_urls = [u if u.endswith("/") else u + "/" for u in index_urls]
        self.find_links = list(find_links)
        self.client = client or SimpleClient("build", deadline=timeout)
        self._pages: dict[NormalizedName, list[Candidate]] = {}
        self._flat: list[Candidate] | None = None
        self._lock = threading.Lock()

    def candidates(self, project: str) -> list[Candidate]:
        name = canonicalize_name(project)
        with self._lock:
            cached = self._pages.get(name)
        if cached is not None:
            return cached
        found: list[Candidate] = [c for c in self._flat_candidates() if c.project == name]
        for index in self.index_urls:
            found.extend(self._index_page(index, name))
        with self._lock:
            self._pages[name] = found
        return found

    def _index_page(self, index: str, name: NormalizedName) -> list[Candidate]:
        if index.startswith("file:"):
            return self._local_index_page(urllib.parse.urljoin(index, f"{name}/"), index)
        try:
            return self.client.project_page(index, name) or []
        except FetchError as e:
            hint = ("check the network and --index-url (or WHEELHOUSE_INDEX_URL)"
                    if e.status is None else "check --index-url and any credentials it needs")
            raise UpstreamError(e.message, hint=hint) from None

    def _local_index_page(self, url: str, index: str) -> list[Candidate]:
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
        page = path / "index.html"
        if page.is_file():
            return parse_html_links(page.read_text(encoding="utf-8"), page.as_uri(), index)
        if path.is_dir():
            return list(_directory_candidates(path, index))
        return []

    def _flat_candidates(self) -> list[Candidate]:
        with self._lock:
            if self._flat is not None:
                return self._flat
        flat: list[Candidate] = []
        for location in self.find_links:
            if "://" not in location or location.startswith("file:"):
                path = Path(urllib.parse.urlparse(location).path if "://" in location
                            else location)
                if not path.is_dir():
                    raise UpstreamError(
                        f"find-links location {location} is not a directory",
                        hint="fix the --find-links path (relative paths are relative to the "
                        "requirements file)",
                    )
                flat.extend(_directory_candidates(path, location))
            else:
                try:
                    flat.extend(self.client.flat_page(location))
                except UpstreamError as e:
                    raise UpstreamError(f"cannot read a find-links page: {e.message}") from None
        with self._lock:
            self._flat = flat
        return flat

    def download(self, cand: Candidate, dest: Path) -> str:
        """Write the file to ``dest``; returns its sha256, checked against the listing's."""
        return self.client.download(cand.url, dest, expected_sha256=cand.sha256)

    def metadata(self, cand: Candidate) -> bytes:
        """The wheel's METADATA without downloading it (see ``SimpleClient.metadata``);
        raises MetadataUnavailable when only a download would tell."""
        return self.client.metadata(cand)


def _directory_candidates(path: Path, source: str) -> Iterable[Candidate]:
    for entry in sorted(path.iterdir()):
        if entry.is_file():
            cand = candidate_from(
                entry.name, entry.resolve().as_uri(), sha256=None, requires_python=None,
                yanked=None, source=source,
            )
            if cand is not None:
                yield cand
