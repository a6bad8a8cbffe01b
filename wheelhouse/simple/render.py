"""The simple index as bytes: PEP 503 HTML, PEP 691 JSON and the flat find-links page, rendered
from neutral rows (the store's files, or the fall-through's upstream files), plus PEP 691
content negotiation.

Pure functions, no HTTP framework: the server decides when to render and caches the results.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache
from operator import attrgetter
from typing import Any, Literal
from urllib.parse import quote

from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from wheelhouse.store.model import Kind, StoredFile

#: The JSON API version we speak. Everything we emit exists in 1.1 (PEP 700: size,
#: upload-time, versions); the HTML marker uses the same Major.Minor.
API_VERSION = "1.1"

#: Where file URLs point, relative to the page that lists them. Relative URLs keep the index
#: correct behind a reverse proxy that mounts it under a prefix, and pip and uv resolve them
#: against the final URL after redirects.
FROM_PROJECT_PAGE = "../../files/"
FROM_LINKS_PAGE = "../files/"


class MediaType(StrEnum):
    """The representations a simple page can be sent as (the Content-Type we answer with)."""

    HTML = "text/html"
    V1_HTML = "application/vnd.pypi.simple.v1+html"
    V1_JSON = "application/vnd.pypi.simple.v1+json"

    @property
    def is_json(self) -> bool:
        return self is MediaType.V1_JSON


@dataclass(frozen=True, kw_only=True)
class Page:
    """Rendered bytes and their strong ETag (quoted, as sent in the header)."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Page:
        return cls(body=body, etag=f'"{hashlib.sha256(body).hexdigest()}"')


# -- URLs -------------------------------------------------------------------------------------


def file_href(f: StoredFile, prefix: str = FROM_PROJECT_PAGE) -> str:
    """The relative URL of a file, without fragment.

    Every character outside the unreserved set is percent-encoded, so a local version's ``+``
    becomes ``%2B`` (a literal ``+`` may be read as a space by some intermediaries). There is
    never a query string: pip and uv disagree on where ``.metadata`` goes when there is one.
    """
    return f"{prefix}{quote(f.project, safe='')}/{quote(f.filename, safe='')}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One file as a project page lists it, whoever hosts it."""

    filename: str
    #: the file's URL (relative to the page, or absolute), without fragment.
    href: str
    sha256: str | None
    requires_python: str | None
    #: None: not yanked; "": yanked without a reason.
    yanked: str | None
    #: sha256 of the PEP 658 metadata file; False says "none" (JSON ``false``, no HTML
    #: attribute); None says nothing at all (no JSON key).
    core_metadata: str | Literal[False] | None = None
    #: PEP 700 fields, written when given; an API 1.1 page gives them for every file.
    size: int | None = None
    upload_time: str | None = None


def _has_core_metadata(f: StoredFile) -> bool:
    # Only wheels: an sdist's metadata may legitimately change when it is built (PEP 658).
    return f.kind is Kind.WHEEL and f.metadata_sha256 is not None


def store_row(f: StoredFile, prefix: str = FROM_PROJECT_PAGE) -> Row:
    """The row of a file in the store, linked relative to a page at ``prefix``."""
    return Row(
        filename=f.filename,
        href=file_href(f, prefix),
        sha256=f.sha256,
        requires_python=f.requires_python,
        yanked=f.yanked,
        core_metadata=f.metadata_sha256 if _has_core_metadata(f) else False,
        size=f.size,
        upload_time=f.upload_time,
    )


def _sorted_rows(rows: Iterable[Row]) -> list[Row]:
    # A stable order makes the bytes, and so the ETag, depend only on the set of files.
    return sorted(rows, key=attrgetter("filename"))


# -- HTML -------------------------------------------------------------------------------------


def _html_document(title: str, body_lines: Iterable[str], api_version: str = API_VERSION
                   ) -> bytes:
    head = (
        "<!DOCTYPE html>\n"
        "<html>\n"
        "  <head>\n"
        '    <meta charset="utf-8">\n'
        f'    <meta name="pypi:repository-version" content="{api_version}">\n'
        f"    <title>{html.escape(title)}</title>\n"
        "  </head>\n"
        "  <body>\n"
    )
    lines = "".join(f"    {line}\n" for line in body_lines)
    return (head + lines + "  </body>\n</html>\n").encode("utf-8")


def _anchor(r: Row) -> str:
    href = f"{r.href}#sha256={r.sha256}" if r.sha256 else r.href
    attrs = [f'href="{html.escape(href)}"']
    if r.requires_python:
        attrs.append(f'data-requires-python="{html.escape(r.requires_python)}"')
    if isinstance(r.core_metadata, str):
        value = html.escape(f"sha256={r.core_metadata}")
        # PEP 714: the new name for current clients, the legacy one for older pip; both MUST
        # carry the same value. "false" is never written: older pip reads it as "present".
        attrs.append(f'data-core-metadata="{value}"')
        attrs.append(f'data-dist-info-metadata="{value}"')
    if r.yanked is not None:
        attrs.append(f'data-yanked="{html.escape(r.yanked)}"')
    return f"<a {' '.join(attrs)}>{html.escape(r.filename)}</a><br>"


def project_list_html(projects: Iterable[str]) -> Page:
    """The PEP 503 root page: one link per project, relative to ``/simple/``."""
    lines = [
        f'<a href="{html.escape(quote(p, safe=""))}/">{html.escape(p)}</a><br>'
        for p in sorted(set(projects))
    ]
    return Page.of(_html_document("Simple index", lines))


def project_page_html(
    project: NormalizedName, rows: Iterable[Row], *, api_version: str = API_VERSION
) -> Page:
    """The PEP 503 detail page of one project, files in filename order."""
    lines = [f"<h1>Links for {html.escape(project)}</h1>"]
    lines += [_anchor(r) for r in _sorted_rows(rows)]
    return Page.of(_html_document(f"Links for {project}", lines, api_version))


def project_html(project: NormalizedName, files: Iterable[StoredFile]) -> Page:
    """The PEP 503 detail page of one project in the store."""
    return project_page_html(project, [store_row(f) for f in _checked(project, files)])


def links_html(files: Iterable[StoredFile]) -> Page:
    """The flat ``--find-links`` page: every file of every project, relative to ``/links/``.

    No PEP 658 attributes here: pip 22.3 to 23.0 (Debian bookworm's pip, CPython 3.11.2's
    bundled pip) compare the metadata's Name with the requested name unnormalized for
    find-links files, and discard ``MarkupSafe`` when ``markupsafe`` was asked for. Without
    them pip reads the metadata from the wheel it downloads anyway; the project pages keep it.
    """
    ordered = sorted(files, key=lambda f: (f.project, f.filename))
    lines = ["<h1>Links</h1>"] + [
        _anchor(replace(store_row(f, FROM_LINKS_PAGE), core_metadata=None)) for f in ordered]
    return Page.of(_html_document("Links", lines))


# -- JSON -------------------------------------------------------------------------------------


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def project_list_json(projects: Iterable[str]) -> Page:
    """The PEP 691 root: ``{"meta": ..., "projects": [{"name": ...}]}``."""
    body = {
        "meta": {"api-version": API_VERSION},
        "projects": [{"name": p} for p in sorted(set(projects))],
    }
    return Page.of(_json_bytes(body))


def _file_json(r: Row) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": r.filename,
        "url": r.href,
        "hashes": {"sha256": r.sha256} if r.sha256 else {},
    }
    if r.requires_python:
        entry["requires-python"] = r.requires_python
    if r.size is not None:
        entry["size"] = r.size
    if r.upload_time is not None:
        entry["upload-time"] = r.upload_time
    # Deliberately no "dist-info-metadata" key: PEP 714 says older pip crashes on it in JSON.
    if r.core_metadata is not None:
        entry["core-metadata"] = {"sha256": r.core_metadata} if r.core_metadata else False
    # JSON wants false, true, or a non-empty reason.
    entry["yanked"] = (r.yanked or True) if r.yanked is not None else False
    return entry


def _version_key(v: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(v))
    except InvalidVersion:
        return (1, v)


def project_page_json(
    project: NormalizedName,
    rows: Iterable[Row],
    *,
    api_version: str = API_VERSION,
    versions: Iterable[str] | None = None,
) -> Page:
    """The PEP 691 detail page of one project, files in filename order. ``versions`` (API
    1.1) is written when given."""
    body: dict[str, Any] = {
        "meta": {"api-version": api_version},
        "name": project,
        "files": [_file_json(r) for r in _sorted_rows(rows)],
    }
    if versions is not None:
        body["versions"] = sorted(set(versions), key=_version_key)
    return Page.of(_json_bytes(body))


def project_json(project: NormalizedName, files: Iterable[StoredFile]) -> Page:
    """The PEP 691 detail page of one project in the store (API 1.1: with size, upload-time
    and versions)."""
    chosen = _checked(project, files)
    return project_page_json(project, [store_row(f) for f in chosen],
                             versions=[f.version for f in chosen])


def _checked(project: NormalizedName, files: Iterable[StoredFile]) -> list[StoredFile]:
    chosen = list(files)
    strays = sorted(f.filename for f in chosen if f.project != project)
    if strays:
        raise ValueError(f"files of other projects on the page of {project}: {strays}")
    return chosen


# -- Content negotiation ----------------------------------------------------------------------

# Names a client may ask for, mapped to what we send. "latest" is answered with the concrete
# version, never echoed back (SRA, Version + Format Selection).
_NAMED: dict[str, MediaType] = {
    "text/html": MediaType.HTML,
    "application/vnd.pypi.simple.v1+html": MediaType.V1_HTML,
    "application/vnd.pypi.simple.latest+html": MediaType.V1_HTML,
    "application/vnd.pypi.simple.v1+json": MediaType.V1_JSON,
    "application/vnd.pypi.simple.latest+json": MediaType.V1_JSON,
}

# Tie-break when a client accepts several at the same quality: HTML first, as PyPI does, so a
# bare "*/*" or a missing Accept gets HTML.
_PREFERENCE: tuple[MediaType, ...] = (MediaType.HTML, MediaType.V1_HTML, MediaType.V1_JSON)

# How specific an Accept range is: an exact type beats "type/*", which beats "*/*" (RFC 9110
# §12.5.1), so "application/vnd.pypi.simple.v1+json;q=0, */*" excludes JSON.
_EXACT, _SUBTYPE_WILDCARD, _FULL_WILDCARD = 3, 2, 1


def _parse_accept(header: str) -> list[tuple[str, float]]:
    """Media ranges with their q-values; malformed entries are dropped, not guessed at."""
    ranges: list[tuple[str, float]] = []
    for item in header.split(","):
        mtype, *params = (part.strip() for part in item.split(";"))
        mtype = mtype.lower()
        if mtype.count("/") != 1:
            continue
        q = 1.0
        valid = True
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    valid = False
                if not 0.0 <= q <= 1.0:
                    valid = False
        if valid:
            ranges.append((mtype, q))
    return ranges


def _matches(media_range: str, candidate: MediaType) -> tuple[int, bool]:
    """(specificity, matched) of one Accept range against one representation."""
    if media_range == "*/*":
        return _FULL_WILDCARD, True
    major, _, minor = media_range.partition("/")
    if minor == "*":
        return _SUBTYPE_WILDCARD, candidate.value.startswith(major + "/")
    return _EXACT, _NAMED.get(media_range) is candidate


@lru_cache(maxsize=512)
def negotiate(accept: str | None, format_param: str | None = None) -> MediaType | None:
    """Choose the representation for a simple page, or None for 406 Not Acceptable.

    ``format_param`` is the ``?format=`` URL parameter; it overrides Accept when it names a
    representation we serve, and is ignored otherwise. A missing or empty Accept means
    ``*/*``. Entry order carries no meaning: the highest q wins, then the most specific range,
    then our preference (HTML). Cached, because clients send the same few headers.
    """
    if format_param:
        chosen = _NAMED.get(format_param.strip().lower())
        if chosen is not None:
            return chosen
    if accept is None or not accept.strip():
        return MediaType.HTML
    ranges = _parse_accept(accept)
    best: tuple[float, int, int] | None = None
    best_type: MediaType | None = None
    for rank, candidate in enumerate(_PREFERENCE):
        # The most specific matching range decides the quality; equally specific ranges (a
        # name and its "latest" alias) combine by taking the higher q.
        specificity, quality = 0, 0.0
        for media_range, q in ranges:
            spec, ok = _matches(media_range, candidate)
            if not ok:
                continue
            if spec > specificity:
                specificity, quality = spec, q
            elif spec == specificity:
                quality = max(quality, q)
        if specificity == 0 or quality <= 0.0:
            continue
        key = (quality, specificity, -rank)
        if best is None or key > best:
            best, best_type = key, candidate
    return best_type


def content_type_header(media: MediaType) -> str:
    """The Content-Type value to send; text/html says its charset, the vnd types are UTF-8."""
    return "text/html; charset=utf-8" if media is MediaType.HTML else media.value


def available_types() -> Sequence[str]:
    """What a 406 response lists as acceptable."""
    return tuple(_NAMED)
