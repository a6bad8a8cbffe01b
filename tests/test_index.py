"""Unit tests of wheelhouse.simple.render: rendering of the simple pages and PEP 691 negotiation."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from packaging.tags import Tag
from packaging.utils import NormalizedName

from wheelhouse.simple import render
from wheelhouse.simple.render import MediaType
from wheelhouse.store.model import Kind, Origin, StoredFile

SHA_A = "a" * 64
SHA_B = "b" * 64
META = "c" * 64


def stored(
    filename: str,
    *,
    project: str = "foo-bar",
    version: str = "1.0",
    kind: Kind = Kind.WHEEL,
    sha256: str = SHA_A,
    requires_python: str | None = None,
    metadata_sha256: str | None = META,
    yanked: str | None = None,
    size: int = 123,
) -> StoredFile:
    return StoredFile(
        filename=filename,
        project=NormalizedName(project),
        version=version,
        kind=kind,
        tags=frozenset({Tag("py3", "none", "any")}) if kind is Kind.WHEEL else frozenset(),
        sha256=sha256,
        size=size,
        upload_time="2026-01-02T03:04:05.123456Z",
        requires_python=requires_python,
        metadata_sha256=metadata_sha256 if kind is Kind.WHEEL else None,
        yanked=yanked,
        origin=Origin.UPLOADED,
    )


class Anchors(HTMLParser):
    """Collects <a> elements: attributes and text, plus the <meta> tags."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, Any]] = []
        self.metas: list[dict[str, str | None]] = []
        self._open: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = {"attrs": dict(attrs), "text": ""}
        elif tag == "meta":
            self.metas.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append(self._open)
            self._open = None


def parse(body: bytes) -> Anchors:
    p = Anchors()
    p.feed(body.decode("utf-8"))
    return p


FILES = [
    stored("foo_bar-1.0-py3-none-any.whl", requires_python=">=3.9,<4"),
    stored("foo_bar-2.0+local-py3-none-any.whl", version="2.0+local", sha256=SHA_B),
    stored("foo_bar-1.5-py3-none-any.whl", version="1.5", yanked="bad <build>"),
    stored("foo_bar-1.6-py3-none-any.whl", version="1.6", yanked=""),
    stored("foo_bar-1.0.tar.gz", kind=Kind.SDIST),
]
PROJECT = NormalizedName("foo-bar")
PAGE_URL = "http://h/simple/foo-bar/"


# -- HTML ------------------------------------------------------------------------------------


def test_detail_html_is_html5_with_repository_version() -> None:
    page = render.project_html(PROJECT, FILES)
    assert page.body.startswith(b"<!DOCTYPE html>")
    metas = parse(page.body).metas
    versions = [m["content"] for m in metas if m.get("name") == "pypi:repository-version"]
    assert versions == ["1.1"]
    assert re.fullmatch(r"\d+\.\d+", str(versions[0]))


def test_detail_html_one_anchor_per_file_text_is_filename() -> None:
    anchors = parse(render.project_html(PROJECT, FILES).body).anchors
    assert sorted(a["text"] for a in anchors) == sorted(f.filename for f in FILES)
    for a in anchors:
        href = a["attrs"]["href"]
        path = urlsplit(href).path
        assert unquote(path.rsplit("/", 1)[1]) == a["text"]
        assert "?" not in href


def test_detail_html_hrefs_are_relative_and_resolve_to_files() -> None:
    anchors = parse(render.project_html(PROJECT, FILES).body).anchors
    by_text = {a["text"]: a["attrs"]["href"] for a in anchors}
    url = urljoin(PAGE_URL, by_text["foo_bar-1.0-py3-none-any.whl"])
    assert url == f"http://h/files/foo-bar/foo_bar-1.0-py3-none-any.whl#sha256={SHA_A}"


def test_plus_is_percent_encoded() -> None:
    anchors = parse(render.project_html(PROJECT, FILES).body).anchors
    href = next(a["attrs"]["href"] for a in anchors if a["text"].startswith("foo_bar-2.0"))
    assert "foo_bar-2.0%2Blocal-py3-none-any.whl#sha256=" in href
    assert "+" not in href
    assert render.file_href(FILES[1]).endswith("%2Blocal-py3-none-any.whl")


def test_sha256_fragment() -> None:
    for a in parse(render.project_html(PROJECT, FILES).body).anchors:
        assert re.search(r"#sha256=[0-9a-f]{64}\Z", a["attrs"]["href"])


def test_requires_python_is_escaped() -> None:
    body = render.project_html(PROJECT, FILES).body
    assert b'data-requires-python="&gt;=3.9,&lt;4"' in body
    attrs = parse(body).anchors
    values = [a["attrs"].get("data-requires-python") for a in attrs]
    assert ">=3.9,<4" in values


def test_core_metadata_only_for_wheels_and_identical_legacy_attribute() -> None:
    anchors = parse(render.project_html(PROJECT, FILES).body).anchors
    for a in anchors:
        attrs = a["attrs"]
        if a["text"].endswith(".whl"):
            assert attrs["data-core-metadata"] == f"sha256={META}"
            assert attrs["data-dist-info-metadata"] == attrs["data-core-metadata"]
        else:
            assert "data-core-metadata" not in attrs
            assert "data-dist-info-metadata" not in attrs
    assert b'"false"' not in render.project_html(PROJECT, FILES).body


def test_wheel_without_metadata_has_no_attribute() -> None:
    f = stored("foo_bar-3.0-py3-none-any.whl", version="3.0", metadata_sha256=None)
    a = parse(render.project_html(PROJECT, [f]).body).anchors[0]
    assert "data-core-metadata" not in a["attrs"]
    assert "data-dist-info-metadata" not in a["attrs"]


def test_yanked_attribute() -> None:
    parsed = parse(render.project_html(PROJECT, FILES).body)
    anchors = {a["text"]: a["attrs"] for a in parsed.anchors}
    assert anchors["foo_bar-1.5-py3-none-any.whl"]["data-yanked"] == "bad <build>"
    assert anchors["foo_bar-1.6-py3-none-any.whl"]["data-yanked"] == ""
    assert "data-yanked" not in anchors["foo_bar-1.0-py3-none-any.whl"]


def test_no_optional_attributes_we_cannot_back() -> None:
    body = render.project_html(PROJECT, FILES).body
    assert b"data-gpg-sig" not in body
    assert b"data-provenance" not in body


def test_project_list_html_links_resolve_to_normalized_detail_pages() -> None:
    page = render.project_list_html(["foo-bar", "other", "foo-bar"])
    anchors = parse(page.body).anchors
    assert [a["text"] for a in anchors] == ["foo-bar", "other"]
    resolved = [urljoin("http://h/simple/", a["attrs"]["href"]) for a in anchors]
    assert resolved == ["http://h/simple/foo-bar/", "http://h/simple/other/"]
    assert page.body.startswith(b"<!DOCTYPE html>")


def test_links_page_lists_every_file_of_every_project() -> None:
    other = stored("other-0.1-py3-none-any.whl", project="other", version="0.1")
    page = render.links_html([*FILES, other])
    anchors = parse(page.body).anchors
    assert sorted(a["text"] for a in anchors) == sorted([*(f.filename for f in FILES),
                                                         other.filename])
    href = next(a["attrs"]["href"] for a in anchors if a["text"] == other.filename)
    assert urljoin("http://h/links/", href).startswith("http://h/files/other/other-0.1-")
    # pip 22.3-23.0 discard find-links files whose metadata spells the name unnormalized.
    assert not any("data-core-metadata" in a["attrs"] or "data-dist-info-metadata" in a["attrs"]
                   for a in anchors)


def test_page_of_files_from_another_project_is_refused() -> None:
    with pytest.raises(ValueError, match="other projects"):
        render.project_html(NormalizedName("other"), FILES)


# -- JSON ------------------------------------------------------------------------------------


def test_detail_json_shape() -> None:
    data = json.loads(render.project_json(PROJECT, FILES).body)
    assert data["meta"] == {"api-version": "1.1"}
    assert data["name"] == "foo-bar"
    assert data["versions"] == ["1.0", "1.5", "1.6", "2.0+local"]
    by_name = {f["filename"]: f for f in data["files"]}
    assert set(by_name) == {f.filename for f in FILES}
    for f in data["files"]:
        assert {"filename", "url", "hashes", "size", "upload-time", "core-metadata",
                "yanked"} <= set(f)
        assert "dist-info-metadata" not in f
        assert not any(k.startswith("_") for k in f)
        assert list(f["hashes"]) == ["sha256"]
        assert isinstance(f["size"], int)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", f["upload-time"])
        assert "?" not in f["url"]
    wheel = by_name["foo_bar-1.0-py3-none-any.whl"]
    assert wheel["requires-python"] == ">=3.9,<4"
    assert wheel["core-metadata"] == {"sha256": META}
    assert wheel["yanked"] is False
    assert wheel["url"] == "../../files/foo-bar/foo_bar-1.0-py3-none-any.whl"
    assert "requires-python" not in by_name["foo_bar-1.6-py3-none-any.whl"]
    assert by_name["foo_bar-1.0.tar.gz"]["core-metadata"] is False
    assert by_name["foo_bar-1.5-py3-none-any.whl"]["yanked"] == "bad <build>"
    assert by_name["foo_bar-1.6-py3-none-any.whl"]["yanked"] is True
    assert by_name["foo_bar-2.0+local-py3-none-any.whl"]["url"].endswith(
        "foo_bar-2.0%2Blocal-py3-none-any.whl")


def test_versions_is_a_set_covering_every_file() -> None:
    data = json.loads(render.project_json(PROJECT, FILES).body)
    assert len(data["versions"]) == len(set(data["versions"]))
    assert {f.version for f in FILES} == set(data["versions"])


def test_project_list_json() -> None:
    data = json.loads(render.project_list_json(["b", "a", "b"]).body)
    assert data == {"meta": {"api-version": "1.1"}, "projects": [{"name": "a"}, {"name": "b"}]}


def test_html_and_json_list_the_same_files_and_hashes() -> None:
    anchors = parse(render.project_html(PROJECT, FILES).body).anchors
    from_html = {a["text"]: a["attrs"]["href"].rsplit("#sha256=", 1)[1] for a in anchors}
    data = json.loads(render.project_json(PROJECT, FILES).body)
    from_json = {f["filename"]: f["hashes"]["sha256"] for f in data["files"]}
    assert from_html == from_json


# -- pages and ETags ---------------------------------------------------------------------------


def test_page_etag_is_a_strong_hash_of_the_bytes() -> None:
    import hashlib

    page = render.project_html(PROJECT, FILES)
    assert page.etag == f'"{hashlib.sha256(page.body).hexdigest()}"'
    assert not page.etag.startswith("W/")


def test_rendering_does_not_depend_on_input_order() -> None:
    assert render.project_html(PROJECT, FILES) == render.project_html(PROJECT, FILES[::-1])
    assert render.project_json(PROJECT, FILES) == render.project_json(PROJECT, FILES[::-1])


# -- negotiation -----------------------------------------------------------------------------

PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
UV_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, MediaType.HTML),
        ("", MediaType.HTML),
        ("*/*", MediaType.HTML),
        ("text/html", MediaType.HTML),
        ("text/*", MediaType.HTML),
        ("application/vnd.pypi.simple.v1+html", MediaType.V1_HTML),
        ("application/vnd.pypi.simple.latest+html", MediaType.V1_HTML),
        ("application/vnd.pypi.simple.v1+json", MediaType.V1_JSON),
        ("application/vnd.pypi.simple.latest+json", MediaType.V1_JSON),
        ("Application/Vnd.Pypi.Simple.V1+JSON", MediaType.V1_JSON),
        (PIP_ACCEPT, MediaType.V1_JSON),
        (UV_ACCEPT, MediaType.V1_JSON),
        # order carries no meaning, q does
        ("text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.9", MediaType.V1_JSON),
        ("application/vnd.pypi.simple.v1+json;q=0.9, text/html;q=0.5", MediaType.V1_JSON),
        ("application/vnd.pypi.simple.v1+json;q=0.4, text/html;q=0.5", MediaType.HTML),
        # q=0 excludes, even when a wildcard would admit it
        ("application/vnd.pypi.simple.v1+json;q=0, */*", MediaType.HTML),
        ("text/html;q=0, application/vnd.pypi.simple.v1+json;q=0.1", MediaType.V1_JSON),
        # a named type beats a wildcard at the same q
        ("*/*, application/vnd.pypi.simple.v1+json", MediaType.V1_JSON),
        ("application/vnd.pypi.simple.v1+json;charset=utf-8", MediaType.V1_JSON),
        # an unsupported type next to a supported one
        ("application/json, text/html;q=0.5", MediaType.HTML),
        # malformed q is dropped rather than guessed
        ("application/vnd.pypi.simple.v1+json;q=abc, text/html;q=0.2", MediaType.HTML),
    ],
)
def test_negotiate(accept: str | None, expected: MediaType) -> None:
    assert render.negotiate(accept) is expected


@pytest.mark.parametrize(
    "accept",
    ["application/json", "application/vnd.pypi.simple.v2+json", "text/plain",
     "text/html;q=0", "application/vnd.pypi.simple.v1+json;q=0, text/html;q=0",
     "image/*"],
)
def test_negotiate_unsupported_is_none(accept: str) -> None:
    assert render.negotiate(accept) is None


def test_format_parameter_overrides_accept() -> None:
    assert render.negotiate("text/html", "application/vnd.pypi.simple.v1+json") is MediaType.V1_JSON
    assert render.negotiate(PIP_ACCEPT, "text/html") is MediaType.HTML
    assert (render.negotiate(None, "application/vnd.pypi.simple.latest+json")
            is MediaType.V1_JSON)
    # an unsupported format falls back to Accept
    assert render.negotiate(PIP_ACCEPT, "application/json") is MediaType.V1_JSON
    assert render.negotiate("application/json", "application/json") is None


def test_content_type_header_never_says_latest_or_plain_json() -> None:
    for media in MediaType:
        value = render.content_type_header(media)
        assert "latest" not in value
        assert value.split(";")[0] != "application/json"
    assert render.content_type_header(MediaType.V1_JSON) == "application/vnd.pypi.simple.v1+json"
    assert render.content_type_header(MediaType.HTML).startswith("text/html")
