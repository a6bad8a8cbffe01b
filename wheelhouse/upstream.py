"""Reading upstream sources: simple indexes (PEP 503 HTML or PEP 691 JSON) and find-links
locations (local directories or HTML pages), and downloading files with their hashes checked.

Upstreams vary (PyPI mirrors without JSON or PEP 658, Artifactory, Nexus), so pages are parsed
from whichever of HTML or JSON comes back, and nothing relies on metadata files being there.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import requests
from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from wheelhouse import __version__
from wheelhouse.errors import UpstreamError
from wheelhouse.store import Kind

_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
)
_CHUNK = 1 << 20


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One file an upstream offers."""

    filename: str
    url: str
    project: NormalizedName
    version: Version
    kind: Kind
    tags: frozenset[Tag]
    sha256: str | None
    requires_python: str | None
    yanked: str | None
    #: the index or find-links location it was listed by.
    source: str


def candidate_from(
    filename: str, url: str, *, sha256: str | None, requires_python: str | None,
    yanked: str | None, source: str,
) -> Candidate | None:
    """A Candidate for a filename, or None when the name is not a wheel or modern sdist."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, tags = parse_wheel_filename(filename)
            kind = Kind.WHEEL
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            tags, kind = frozenset(), Kind.SDIST
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return Candidate(
        filename=filename, url=url, project=name, version=version, kind=kind,
        tags=frozenset(tags), sha256=sha256, requires_python=requires_python or None,
        yanked=yanked, source=source,
    )


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.base: str | None = None
        self.links: list[dict[str, str | None]] = []
        self._current: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self._current = dict(attrs)
            self._current["_text"] = ""

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current["_text"] = (self._current["_text"] or "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.links.append(self._current)
            self._current = None


def parse_html_links(html: str, page_url: str, source: str) -> list[Candidate]:
    parser = _LinkParser()
    parser.feed(html)
    base = urllib.parse.urljoin(page_url, parser.base) if parser.base else page_url
    out = []
    for link in parser.links:
        href = link.get("href")
        if not href:
            continue
        url = urllib.parse.urljoin(base, href)
        url_part, _, fragment = url.partition("#")
        filename = urllib.parse.unquote(url_part.rsplit("/", 1)[-1])
        sha = None
        if fragment.startswith("sha256="):
            sha = fragment.removeprefix("sha256=").lower()
        cand = candidate_from(
            filename, url_part, sha256=sha, requires_python=link.get("data-requires-python"),
            yanked=link.get("data-yanked"), source=source,
        )
        if cand is not None:
            out.append(cand)
    return out


def parse_json_page(data: bytes, page_url: str, source: str) -> list[Candidate]:
    try:
        doc = json.loads(data)
        files = doc["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise UpstreamError(f"{page_url} returned malformed PEP 691 JSON: {e}") from None
    out = []
    for f in files:
        yanked = f.get("yanked", False)
        yanked_reason = (yanked if isinstance(yanked, str) else "") if yanked else None
        cand = candidate_from(
            f["filename"], urllib.parse.urljoin(page_url, f["url"]),
            sha256=(f.get("hashes") or {}).get("sha256"),
            requires_python=f.get("requires-python"), yanked=yanked_reason, source=source,
        )
        if cand is not None:
            out.append(cand)
    return out


class Upstream:
    """Candidates for a project from every configured source; pages fetched once per run."""

    def __init__(
        self,
        *,
        index_urls: Sequence[str],
        find_links: Sequence[str] = (),
        timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        self.index_urls = [u if u.endswith("/") else u + "/" for u in index_urls]
        self.find_links = list(find_links)
        self.timeout = timeout
        self.session = session or _session()
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
        url = urllib.parse.urljoin(index, f"{name}/")
        if url.startswith("file:"):
            return self._local_index_page(url, index)
        try:
            resp = self.session.get(url, headers={"Accept": _ACCEPT}, timeout=self.timeout)
        except requests.RequestException as e:
            raise UpstreamError(
                f"cannot reach the index {index}: {e}",
                hint="check the network and --index-url (or WHEELHOUSE_INDEX_URL)",
            ) from None
        if resp.status_code == 404:
            return []
        if resp.status_code != 200:
            raise UpstreamError(
                f"{url} answered HTTP {resp.status_code}",
                hint="check --index-url and any credentials it needs",
            )
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype == "application/vnd.pypi.simple.v1+json":
            return parse_json_page(resp.content, resp.url, index)
        return parse_html_links(resp.text, resp.url, index)

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
                    resp = self.session.get(location, headers={"Accept": "text/html"},
                                            timeout=self.timeout)
                    resp.raise_for_status()
                except requests.RequestException as e:
                    raise UpstreamError(f"cannot read find-links page {location}: {e}") from None
                flat.extend(parse_html_links(resp.text, resp.url, location))
        with self._lock:
            self._flat = flat
        return flat

    def metadata(self, cand: Candidate) -> bytes:
        """A wheel's METADATA. (Interim: reads local files directly, downloads others to a
        temporary file; to be replaced by PEP 658 and range reads.)"""
        import tempfile

        from wheelhouse.distributions import read_wheel_metadata

        local = local_path(cand.url)
        if local is not None:
            return read_wheel_metadata(local, cand.filename)
        with tempfile.TemporaryDirectory(prefix="wheelhouse-meta-") as tmp:
            dest = Path(tmp) / cand.filename
            self.download(cand, dest)
            return read_wheel_metadata(dest, cand.filename)

    # -- downloading -----------------------------------------------------------------------
    def download(self, cand: Candidate, dest: Path) -> str:
        """Write the file to ``dest``; returns its sha256, checked against the listing's."""
        h = hashlib.sha256()
        try:
            if cand.url.startswith("file:"):
                src = Path(urllib.parse.unquote(urllib.parse.urlparse(cand.url).path))
                with src.open("rb") as fin, dest.open("wb") as fout:
                    while chunk := fin.read(_CHUNK):
                        h.update(chunk)
                        fout.write(chunk)
            else:
                with self.session.get(cand.url, stream=True, timeout=self.timeout,
                                      headers={"Accept-Encoding": "identity"}) as resp:
                    resp.raise_for_status()
                    with dest.open("wb") as fout:
                        for chunk in resp.iter_content(_CHUNK):
                            h.update(chunk)
                            fout.write(chunk)
        except (requests.RequestException, OSError) as e:
            raise UpstreamError(f"cannot download {cand.filename} from {cand.url}: {e}") from None
        digest = h.hexdigest()
        if cand.sha256 and digest != cand.sha256:
            raise UpstreamError(
                f"{cand.filename} from {cand.source} has sha256 {digest}, "
                f"but the index lists {cand.sha256}",
                hint="the upstream or a proxy served different bytes; retry, or report it",
            )
        return digest


def _directory_candidates(path: Path, source: str) -> Iterable[Candidate]:
    for entry in sorted(path.iterdir()):
        if entry.is_file():
            cand = candidate_from(
                entry.name, entry.resolve().as_uri(), sha256=None, requires_python=None,
                yanked=None, source=source,
            )
            if cand is not None:
                yield cand


def _session() -> requests.Session:
    session = requests.Session()
    retry = Retry(total=4, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504),
                  allowed_methods=("GET", "HEAD"))
    adapter = HTTPAdapter(max_retries=retry, pool_connections=8, pool_maxsize=16)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"wheelhouse/{__version__}"
    return session


def local_path(url: str) -> Path | None:
    """The file behind a ``file:`` URL (find-links directories, local indexes), else None."""
    if not url.startswith("file:"):
        return None
    return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
