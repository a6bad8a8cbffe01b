"""The one HTTP client for simple-index pages (PEP 503 HTML, PEP 691 JSON, flat find-links
pages) and the files they list: candidates, a wheel's METADATA without the wheel, downloads.

Every bound of talking to an index lives here: Accept negotiation, Content-Type dispatch,
charset, retries, a deadline per request, a page-size cap and same-origin redirects. Reading
the pages' contents is ``wheelhouse.simple.pages`` (re-exported here).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from zipfile import BadZipFile

import requests
import urllib3

from wheelhouse import __version__
from wheelhouse.distributions import read_wheel_metadata
from wheelhouse.errors import (
    FetchError,
    FetchTimeout,
    InvalidDistribution,
    MetadataUnavailable,
    UpstreamError,
)
from wheelhouse.simple.deadline import DeadlineAdapter, DeadlineRetry
from wheelhouse.simple.deadline import deadline as deadline_of
from wheelhouse.simple.pages import (
    Candidate,
    display,
    parse_html_links,
    parse_json_page,
)
from wheelhouse.simple.zipmember import TAIL_BYTES, read_member
from wheelhouse.store.model import Kind
from wheelhouse.util import disk_full

log = logging.getLogger(__name__)

#: What we accept, pip's way: JSON preferred, HTML understood.
ACCEPT = ("application/vnd.pypi.simple.v1+json, "
          "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01")
_JSON = "application/vnd.pypi.simple.v1+json"
_HTML = frozenset({"text/html", "application/vnd.pypi.simple.v1+html"})
MAX_PAGE_BYTES = 20 * 1024 * 1024
_MAX_REDIRECTS = 5
_CHUNK = 1 << 16





def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


# -- the client ---------------------------------------------------------------------------------

def _why(e: Exception) -> str:
    # urllib3 wraps the cause in layers that repeat the connection; keep what happened.
    inner = e.args[0] if e.args and isinstance(e.args[0], BaseException) else e
    text = str(getattr(inner, "reason", None) or inner)
    return f"{type(e).__name__}: {text.partition('): ')[2] or text}"


def _media(resp: requests.Response) -> tuple[str, str | None]:
    """(media type, charset) of the Content-Type."""
    mtype, *params = resp.headers.get("Content-Type", "").split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return mtype.strip().lower(), charset


def _decode(body: bytes, charset: str | None) -> str:
    # The declared charset, else UTF-8 (what simple pages are), never requests' ISO-8859-1.
    try:
        return body.decode(charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", "replace")


def local_path(url: str) -> Path | None:
    """The file behind a ``file:`` URL (find-links directories, local indexes), else None."""
    if not url.startswith("file:"):
        return None
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))


def _choose_metadata(names: list[str]) -> str:
    found = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
    if len(found) != 1:
        raise BadZipFile(f"expected one top-level *.dist-info/METADATA, found {len(found)}")
    return found[0]


Auth = tuple[str, str] | None


class SimpleClient:
    """One session (pooled connections, retries of idempotent GETs on 502/503/504 and
    connection errors) for reading simple pages and the files they list.

    ``deadline`` bounds each page or metadata read as a whole, retries and redirects
    included; downloads have only the per-read timeout, since a large file may take long.
    """

    def __init__(self, purpose: str, *, deadline: float = 60.0, connect_timeout: float = 10.0,
                 max_page_bytes: int = MAX_PAGE_BYTES, retries: int = 2,
                 pool_size: int = 16) -> None:
        self.deadline = deadline
        self.connect_timeout = connect_timeout
        self.max_page_bytes = max_page_bytes
        self.session = requests.Session()
        # Retry-After is not honoured: a server asking for minutes would outlast any deadline.
        retry = DeadlineRetry(total=retries, backoff_factor=0.2, backoff_max=2.0,
                       status_forcelist=(502, 503, 504), allowed_methods=("GET", "HEAD"),
                       respect_retry_after_header=False, raise_on_status=False)
        adapter = DeadlineAdapter(max_retries=retry, pool_connections=4, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # Only downloads follow redirects through requests; pages go through _open.
        self.session.max_redirects = _MAX_REDIRECTS
        self.session.headers["User-Agent"] = f"wheelhouse/{__version__} ({purpose})"

    def close(self) -> None:
        self.session.close()

    # -- pages -------------------------------------------------------------------------------
    def project_page(self, index_url: str, project: str, *, auth: Auth = None
                     ) -> list[Candidate] | None:
        """The files of ``project`` on the index; None when it answers 404 or 410."""
        base = index_url if index_url.endswith("/") else index_url + "/"
        url = urllib.parse.urljoin(base, urllib.parse.quote(project, safe="") + "/")
        deadline = time.monotonic() + self.deadline
        resp = self._open(url, {"Accept": ACCEPT}, auth, deadline)
        if resp.status_code in (404, 410):
            resp.close()
            return None
        return self._parse(self._page(resp, url, deadline), resp, base)

    def flat_page(self, url: str, *, auth: Auth = None) -> list[Candidate]:
        """The files a find-links HTML page links to."""
        deadline = time.monotonic() + self.deadline
        resp = self._open(url, {"Accept": "text/html"}, auth, deadline)
        return self._parse(self._page(resp, url, deadline), resp, url, json_ok=False)

    def _open(self, url: str, headers: Mapping[str, str], auth: Auth, deadline: float
              ) -> requests.Response:
        """A streamed answer, after same-origin redirects; the body is not read yet."""
        if auth is None and "@" in urllib.parse.urlsplit(url).netloc:
            # Credentials in the URL hold for redirects within the origin too.
            user, password = requests.utils.get_auth_from_url(url)
            auth = (user, password)
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchTimeout(f"{display(url)} did not answer within {self.deadline:g} s")
            try:
                # Until the headers are in; the body is read against the deadline in _body.
                with deadline_of(deadline):
                    resp = self.session.get(
                        current, headers=headers, auth=auth, stream=True,
                        allow_redirects=False,
                        timeout=(min(self.connect_timeout, remaining), remaining),
                    )
            except requests.RequestException as e:
                if time.monotonic() >= deadline:
                    raise FetchTimeout(f"{display(current)} did not answer within "
                                       f"{self.deadline:g} s") from None
                raise FetchError(f"cannot reach {display(current)}: {_why(e)}",
                                 status=None) from None
            target = self.session.get_redirect_target(resp)
            if target is None:
                return resp
            resp.close()
            target = urllib.parse.urljoin(current, target)
            if origin(target) != origin(current):
                raise FetchError(f"{display(current)} redirects to another origin "
                                 f"({display(target)}); not followed", status=resp.status_code)
            current = target
        raise FetchError(f"{display(url)} redirects more than {_MAX_REDIRECTS} times",
                         status=None)

    def _page(self, resp: requests.Response, url: str, deadline: float) -> bytes:
        if resp.status_code != 200:
            detail = _decode(next(resp.iter_content(200), b""), None)
            resp.close()
            raise FetchError(f"{display(url)} answered HTTP {resp.status_code}",
                             status=resp.status_code, detail=detail.strip())
        return self._body(resp, url, deadline, self.max_page_bytes)

    def _body(self, resp: requests.Response, url: str, deadline: float, limit: int) -> bytes:
        length = resp.headers.get("Content-Length", "")
        buf = bytearray()
        try:
            if length.isdigit() and int(length) > limit:
                raise FetchError(f"{display(url)} is larger than {limit} bytes",
                                 status=resp.status_code)
            # read1 returns what one socket read brings (requests' iter_content waits for a
            # full chunk), so the deadline is checked however slowly bytes trickle in; it
            # also inflates a compressed body at most a chunk at a time.
            while chunk := resp.raw.read1(_CHUNK, decode_content=True) or b"":
                buf += chunk
                if len(buf) > limit:
                    raise FetchError(f"{display(url)} is larger than {limit} bytes",
                                     status=resp.status_code)
                if time.monotonic() > deadline:
                    raise FetchTimeout(f"{display(url)} took longer than {self.deadline:g} s")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            raise FetchError(f"reading {display(url)} failed: {_why(e)}", status=None) from None
        finally:
            resp.close()
        return bytes(buf)

    def _parse(self, body: bytes, resp: requests.Response, source: str, *,
               json_ok: bool = True) -> list[Candidate]:
        mtype, charset = _media(resp)
        if mtype == _JSON and json_ok:
            return parse_json_page(body, resp.url, source)
        if mtype in _HTML:
            return parse_html_links(_decode(body, charset), resp.url, source)
        raise UpstreamError(f"{display(resp.url)} answered with Content-Type "
                            f"{mtype or 'none'!r}, which is not a simple page")

    # -- files -------------------------------------------------------------------------------
    def metadata(self, cand: Candidate) -> bytes:
        """The wheel's ``*.dist-info/METADATA``, never by reading the whole file: its PEP 658
        file when advertised, else byte ranges of the wheel. Raises MetadataUnavailable when
        neither works (download the file instead), UpstreamError when the index is wrong."""
        if cand.kind is not Kind.WHEEL:
            raise MetadataUnavailable(f"{cand.filename} is not a wheel")
        local = local_path(cand.url)
        if local is not None:
            try:
                return read_wheel_metadata(local, cand.filename)
            except InvalidDistribution as e:
                raise UpstreamError(e.message) from None
        if cand.core_metadata:
            found = self._pep658(cand)
            if found is not None:
                return found
        return self._ranged_metadata(cand)

    def _pep658(self, cand: Candidate) -> bytes | None:
        url = cand.url + ".metadata"
        deadline = time.monotonic() + self.deadline
        resp = self._open(url, {}, None, deadline)
        if resp.status_code in (404, 410):
            resp.close()
            log.info("%s advertises a metadata file it does not have", display(cand.url))
            return None
        data = self._page(resp, url, deadline)
        expected = cand.core_metadata if isinstance(cand.core_metadata, str) else None
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise UpstreamError(f"the metadata file of {cand.filename} does not match the "
                                f"sha256 {cand.source} lists for it")
        return data

    def _ranged_metadata(self, cand: Candidate) -> bytes:
        deadline = time.monotonic() + self.deadline

        def ranged(spec: str, limit: int) -> tuple[int, int, bytes]:
            headers = {"Range": f"bytes={spec}", "Accept-Encoding": "identity"}
            resp = self._open(cand.url, headers, None, deadline)
            size = resp.headers.get("Content-Range", "").rpartition("/")[2]
            if resp.status_code == 416 and spec.startswith("-") and size.isdigit():
                # Unlike RFC 9110, werkzeug refuses a suffix longer than the file: the file
                # is smaller than one tail, and its size is in "Content-Range: bytes */N".
                resp.close()
                if 0 < int(size) <= limit:
                    return ranged(f"0-{int(size) - 1}", limit)
            if resp.status_code != 206:
                resp.close()  # unread: a 200 here would be the whole file
                if resp.status_code in (200, 416):
                    raise MetadataUnavailable(f"{display(cand.url)} does not answer range "
                                              f"requests (HTTP {resp.status_code})")
                raise FetchError(f"{display(cand.url)} answered HTTP {resp.status_code}",
                                 status=resp.status_code)
            unit, _, rest = resp.headers.get("Content-Range", "").partition(" ")
            span, _, total = rest.partition("/")
            first, _, last = span.partition("-")
            if (unit != "bytes" or not (first.isdigit() and last.isdigit() and total.isdigit())
                    or int(last) - int(first) >= limit):
                resp.close()
                raise MetadataUnavailable(f"{display(cand.url)} sent no usable Content-Range")
            data = self._body(resp, cand.url, deadline, limit)
            if len(data) != int(last) - int(first) + 1:
                raise MetadataUnavailable(f"{display(cand.url)} sent a short range")
            return int(first), int(total), data

        def read(start: int, length: int) -> bytes:
            first, _total, data = ranged(f"{start}-{start + length - 1}", length)
            if first != start:
                raise MetadataUnavailable(f"{display(cand.url)} sent another range")
            return data

        first, total, tail = ranged(f"-{TAIL_BYTES}", TAIL_BYTES)
        if first + len(tail) != total:
            raise MetadataUnavailable(f"{display(cand.url)} sent another range")
        try:
            return read_member(tail, total, read, _choose_metadata, limit=self.max_page_bytes)
        except BadZipFile as e:
            raise MetadataUnavailable(f"cannot read the METADATA of {cand.filename} by "
                                      f"ranges: {e}") from None

    def download(self, url: str, dest: Path, *, expected_sha256: str | None = None,
                 auth: Auth = None) -> str:
        """Stream ``url`` (or copy a ``file:`` URL) to ``dest``; returns its sha256, checked
        against ``expected_sha256``. Redirects may leave the origin: the hash guards the
        bytes, and requests drops credentials on the way."""
        h = hashlib.sha256()
        needed: int | None = None  # what a full disk would have needed, when known
        try:
            local = local_path(url)
            with dest.open("wb") as out:
                if local is not None:
                    with local.open("rb") as src:
                        needed = os.fstat(src.fileno()).st_size
                        while chunk := src.read(1 << 20):
                            h.update(chunk)
                            out.write(chunk)
                else:
                    with self.session.get(url, stream=True, auth=auth,
                                          timeout=(self.connect_timeout, self.deadline),
                                          headers={"Accept-Encoding": "identity"}) as resp:
                        if resp.status_code != 200:
                            raise FetchError(f"{display(url)} answered HTTP {resp.status_code}",
                                             status=resp.status_code)
                        needed = int(resp.headers.get("Content-Length") or 0) or None
                        for chunk in resp.iter_content(1 << 20):
                            h.update(chunk)
                            out.write(chunk)
        except requests.RequestException as e:
            raise FetchError(f"cannot download {display(url)}: {_why(e)}", status=None) from None
        except OSError as e:
            # Not the upstream's fault when the store's disk is full: that stops the run.
            raise disk_full(e, dest, needed=needed) or UpstreamError(
                f"cannot download {display(url)} to {dest}: {e}") from None
        digest = h.hexdigest()
        if expected_sha256 and digest != expected_sha256.lower():
            raise UpstreamError(
                f"{display(url)} has sha256 {digest}, but the index lists {expected_sha256}",
                hint="the upstream or a proxy served different bytes; retry, or report it",
            )
        return digest
