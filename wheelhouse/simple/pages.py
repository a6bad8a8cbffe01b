"""What simple pages say: PEP 503 HTML (and find-links pages) and PEP 691 JSON parsed into
``Candidate``s, checked as they are read. No HTTP here; fetching is ``wheelhouse.simple.client``.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from wheelhouse.errors import UpstreamError
from wheelhouse.store.model import Kind

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")


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
    #: PEP 658: sha256 of the metadata file, True when advertised without a hash.
    core_metadata: str | bool | None = None
    size: int | None = None
    upload_time: str | None = None


def candidate_from(
    filename: str, url: str, *, sha256: str | None, requires_python: str | None,
    yanked: str | None, source: str, core_metadata: str | bool | None = None,
    size: int | None = None, upload_time: str | None = None,
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
        yanked=yanked, source=source, core_metadata=core_metadata or None, size=size,
        upload_time=upload_time,
    )


def display(url: str) -> str:
    """A URL fit for messages: without any credentials in it."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _hex(value: object) -> str | None:
    return value.lower() if isinstance(value, str) and _HEX64.match(value) else None


def _drop(filename: str, page_url: str) -> None:
    log.warning("%s lists %s with a sha256 that is not 64 hex digits; ignoring that file",
                display(page_url), filename)


# -- parsing ------------------------------------------------------------------------------


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.base: str | None = None
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self.links.append(dict(attrs))


def _html_core_metadata(link: Mapping[str, str | None]) -> str | bool | None:
    # PEP 714's name first, the legacy one as a fallback. Like pip, any value but a hash
    # means "there is a metadata file"; a bare attribute too.
    for key in ("data-core-metadata", "data-dist-info-metadata"):
        if key in link:
            name, _, value = (link[key] or "").partition("=")
            return (_hex(value) or True) if name == "sha256" else True
    return None


def parse_html_links(html: str, page_url: str, source: str) -> list[Candidate]:
    """The files a PEP 503 (or find-links) page links to, resolved against ``page_url``."""
    parser = _LinkParser()
    parser.feed(html)
    base = urllib.parse.urljoin(page_url, parser.base) if parser.base else page_url
    out = []
    for link in parser.links:
        href = link.get("href")
        if not href:
            continue
        url_part, _, fragment = urllib.parse.urljoin(base, href.strip()).partition("#")
        filename = urllib.parse.unquote(url_part.rsplit("/", 1)[-1])
        sha = None
        if fragment.startswith("sha256="):
            sha = _hex(fragment.removeprefix("sha256="))
            if sha is None:
                _drop(filename, page_url)
                continue
        # A bare data-yanked is "yanked without a reason".
        yanked = (link["data-yanked"] or "") if "data-yanked" in link else None
        cand = candidate_from(
            filename, url_part, sha256=sha, requires_python=link.get("data-requires-python"),
            yanked=yanked, source=source, core_metadata=_html_core_metadata(link),
        )
        if cand is not None:
            out.append(cand)
    return out


def _json_core_metadata(f: Mapping[str, Any]) -> str | bool | None:
    value = f["core-metadata"] if "core-metadata" in f else f.get("dist-info-metadata")
    if isinstance(value, dict):
        return _hex(value.get("sha256")) or True
    return True if value is True else None


def _absolute(page_url: str, url: str) -> str:
    # PyPI's pages give absolute URLs; urljoin costs a third of parsing a 16,000-file page.
    if url.startswith(("https://", "http://")):
        return url
    return urllib.parse.urljoin(page_url, url)


def parse_json_page(data: bytes, page_url: str, source: str) -> list[Candidate]:
    """The files of a PEP 691 project page. Raises UpstreamError for a malformed one."""

    def malformed(what: str) -> UpstreamError:
        return UpstreamError(f"{display(page_url)} returned malformed PEP 691 JSON: {what}")

    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # RecursionError: arrays nested 100,000 deep
        raise malformed(str(e) or type(e).__name__) from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        raise malformed("not an object with a list of files")
    meta = doc.get("meta")
    version = meta.get("api-version", "1.0") if isinstance(meta, dict) else "1.0"
    # Clients must refuse a major version they do not know (PEP 629, PEP 691); a page that
    # does not say is read as 1.x.
    if not isinstance(version, str) or version.partition(".")[0] != "1":
        raise malformed(f"api-version {version!r}, not 1.x")
    out = []
    for f in files:
        if not isinstance(f, dict):
            raise malformed(f"a file is {type(f).__name__}, not an object")
        filename, url, hashes = f.get("filename"), f.get("url"), f.get("hashes", {})
        if not isinstance(filename, str) or not isinstance(url, str):
            raise malformed("a file without a string filename and url")
        requires_python, yanked = f.get("requires-python"), f.get("yanked", False)
        if (not isinstance(hashes, dict) or not isinstance(yanked, bool | str)
                or not isinstance(requires_python, str | None)):
            raise malformed(f"{filename} has hashes, yanked or requires-python of a wrong type")
        sha = _hex(hashes.get("sha256"))
        if sha is None and "sha256" in hashes:
            _drop(filename, page_url)
            continue
        size, upload_time = f.get("size"), f.get("upload-time")
        cand = candidate_from(
            filename, _absolute(page_url, url), sha256=sha,
            requires_python=requires_python,
            yanked=(yanked if isinstance(yanked, str) else "") if yanked else None,
            source=source, core_metadata=_json_core_metadata(f),
            size=size if type(size) is int and size >= 0 else None,
            upload_time=upload_time if isinstance(upload_time, str) else None,
        )
        if cand is not None:
            out.append(cand)
    return out
