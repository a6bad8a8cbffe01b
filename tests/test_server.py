"""Tests of the index server (wheelhouse.server) against the standards checklist, sections A-G.

Every app test runs twice: through the WSGI hot path and through Flask's own routing
(``hot_path=False``), so both ways of answering are held to the same rules. The tests marked
``slow`` start the real server with ``serve()`` and install from it with real pip and uv.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from packaging.utils import NormalizedName, canonicalize_name

from tests.conftest import local_options
from tests.distributions import write_sdist as make_sdist
from tests.distributions import write_wheel as make_wheel
from wheelhouse.errors import ServeError, StoreError
from wheelhouse.options import ServerOptions
from wheelhouse.server import hot
from wheelhouse.server.app import create_app
from wheelhouse.server.serving import make_server, serve
from wheelhouse.server.state import IndexState
from wheelhouse.simple import render
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

JSON = "application/vnd.pypi.simple.v1+json"
V1_HTML = "application/vnd.pypi.simple.v1+html"
PIP_ACCEPT = f"{JSON}, {V1_HTML}; q=0.1, text/html; q=0.01"
UV_ACCEPT = f"{JSON}, {V1_HTML};q=0.2, text/html;q=0.01"

# -- building real distributions ---------------------------------------------------------------


def wheel_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return zf.read(name)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    """A store with a mixed project: plain, local-version, yanked wheels and an sdist."""
    root = tmp_path / "store"
    src = tmp_path / "src"
    src.mkdir()
    store = Store(root)
    for path in [
        make_wheel(src, "Foo_Bar", "1.0", requires_python=">=3.9,<4"),
        make_wheel(src, "foo-bar", "2.0+local"),
        make_wheel(src, "foo-bar", "1.5"),
        make_wheel(src, "foo-bar", "1.6"),
        make_sdist(src, "foo-bar", "1.0"),
        make_wheel(src, "other", "0.1"),
    ]:
        store.publish(path, origin=Origin.UPLOADED)
    store.set_yanked("foo_bar-1.5-py3-none-any.whl", "bad <build>")
    store.set_yanked("foo_bar-1.6-py3-none-any.whl", "")
    return root


@pytest.fixture(params=[True, False], ids=["hot", "flask"])
def app(request: pytest.FixtureRequest, store_root: Path) -> Flask:
    return create_app(ServerOptions(store=store_root, hot_path=request.param))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def src_file(store_root: Path, filename: str) -> Path:
    return store_root.parent / "src" / filename


class Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.metas: list[dict[str, str | None]] = []
        self._attrs: dict[str, str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs, self._text = dict(attrs), ""
        elif tag == "meta":
            self.metas.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._attrs is not None:
            self.anchors.append((self._attrs, self._text))
            self._attrs = None


def anchors(body: bytes) -> list[tuple[dict[str, str | None], str]]:
    parser = Anchors()
    parser.feed(body.decode())
    return parser.anchors


def mimetype(resp: Any) -> str:
    return str(resp.headers["Content-Type"]).split(";")[0].strip()


# == A. URLs, names, redirects ================================================================


def test_project_list_html(client: FlaskClient) -> None:
    resp = client.get("/simple/")
    assert resp.status_code == 200
    links = anchors(resp.data)
    assert [text for _, text in links] == ["foo-bar", "other"]
    for attrs, text in links:
        assert urljoin("http://localhost/simple/", attrs["href"] or "") == (
            f"http://localhost/simple/{text}/"
        )


def test_project_list_json(client: FlaskClient) -> None:
    resp = client.get("/simple/", headers={"Accept": JSON})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == JSON
    assert resp.get_json() == {
        "meta": {"api-version": "1.1"},
        "projects": [{"name": "foo-bar"}, {"name": "other"}],
    }


@pytest.mark.parametrize("path", ["/simple/Foo_Bar/", "/simple/foo.bar/", "/simple/FOO-BAR/",
                                  "/simple/foo__bar", "/simple/foo-bar"])
def test_non_normalized_or_slashless_names_redirect(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 301
    assert resp.headers["Location"] == "/simple/foo-bar/"
    assert resp.headers["Content-Type"]


def test_simple_without_slash_redirects(client: FlaskClient) -> None:
    resp = client.get("/simple")
    assert resp.status_code in (301, 308)
    assert resp.headers["Location"].endswith("/simple/")


def test_redirect_keeps_query_and_mount_prefix(client: FlaskClient) -> None:
    resp = client.get("/simple/Foo_Bar/?format=text/html")
    assert resp.headers["Location"] == "/simple/foo-bar/?format=text/html"
    resp = client.get("/simple/Foo_Bar/", base_url="http://localhost/wh/")
    assert resp.status_code == 301
    assert resp.headers["Location"] == "/wh/simple/foo-bar/"


def test_redirects_are_followed_to_the_page(client: FlaskClient) -> None:
    resp = client.get("/simple/Foo.Bar", follow_redirects=True)
    assert resp.status_code == 200
    assert resp.request.path == "/simple/foo-bar/"


@pytest.mark.parametrize("accept", [None, JSON, "text/html"])
@pytest.mark.parametrize("path", ["/simple/nope/", "/simple/No_Pe/", "/simple/nope",
                                  "/simple/foo-bar/extra/", "/simple//"])
def test_unknown_project_is_404_never_empty_200(
    client: FlaskClient, path: str, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept else {}
    resp = client.get(path, headers=headers)
    assert resp.status_code == 404
    assert resp.headers["Content-Type"]


def test_file_urls_resolve_against_the_final_url(client: FlaskClient) -> None:
    page = client.get("/simple/FOO_BAR", follow_redirects=True)
    final = "http://localhost" + page.request.path
    for attrs, text in anchors(page.data):
        url = urljoin(final, attrs["href"] or "")
        resp = client.get(urlsplit(url).path)
        assert resp.status_code == 200, url
        assert hashlib.sha256(resp.data).hexdigest() == url.rsplit("#sha256=", 1)[1]
        assert unquote(urlsplit(url).path.rsplit("/", 1)[1]) == text


# == B. Content negotiation =====================================================================


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (JSON, JSON),
        (PIP_ACCEPT, JSON),
        (UV_ACCEPT, JSON),
        ("application/vnd.pypi.simple.latest+json", JSON),
        ("text/html", "text/html"),
        (V1_HTML, V1_HTML),
        ("application/vnd.pypi.simple.latest+html", V1_HTML),
        (None, "text/html"),
        ("*/*", "text/html"),
        ("text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.6", JSON),
        (f"{JSON};q=0, */*", "text/html"),
    ],
)
@pytest.mark.parametrize("path", ["/simple/", "/simple/foo-bar/"])
def test_negotiated_content_type(
    client: FlaskClient, path: str, accept: str | None, content_type: str
) -> None:
    resp = client.get(path, headers={"Accept": accept} if accept else {})
    assert resp.status_code == 200
    assert mimetype(resp) == content_type
    assert resp.headers["Vary"] == "Accept"
    if content_type == JSON:
        assert resp.get_json(force=True)["meta"]["api-version"] == "1.1"
    else:
        assert resp.data.startswith(b"<!DOCTYPE html>")


@pytest.mark.parametrize("accept", ["application/json", "text/plain", "text/html;q=0"])
def test_only_unsupported_types_get_406(client: FlaskClient, accept: str) -> None:
    resp = client.get("/simple/foo-bar/", headers={"Accept": accept})
    assert resp.status_code == 406
    assert mimetype(resp) != "application/json"
    assert resp.headers["Vary"] == "Accept"


def test_no_response_is_labelled_plain_json_or_varies_on_everything(
    client: FlaskClient,
) -> None:
    for accept in [JSON, "text/html", "*/*", "application/json", PIP_ACCEPT]:
        for path in ["/simple/", "/simple/foo-bar/", "/simple/nope/"]:
            resp = client.get(path, headers={"Accept": accept})
            assert mimetype(resp) != "application/json"
            assert resp.headers.get("Vary", "Accept") == "Accept"


def test_format_parameter(client: FlaskClient) -> None:
    resp = client.get(f"/simple/foo-bar/?format={JSON}", headers={"Accept": "text/html"})
    assert mimetype(resp) == JSON
    resp = client.get("/simple/foo-bar/?format=text/html", headers={"Accept": PIP_ACCEPT})
    assert mimetype(resp) == "text/html"
    # unsupported format: fall back to Accept
    resp = client.get("/simple/foo-bar/?format=application/json", headers={"Accept": JSON})
    assert mimetype(resp) == JSON


def test_charset_suffix_only_where_harmless(client: FlaskClient) -> None:
    assert client.get("/simple/").headers["Content-Type"] == "text/html; charset=utf-8"
    assert client.get("/simple/", headers={"Accept": V1_HTML}).headers["Content-Type"] == V1_HTML


# == C. HTML ===================================================================================


def test_detail_html(client: FlaskClient, store_root: Path) -> None:
    resp = client.get("/simple/foo-bar/", headers={"Accept": "text/html"})
    body = resp.data
    assert body.startswith(b"<!DOCTYPE html>")
    parser = Anchors()
    parser.feed(body.decode())
    assert [m["content"] for m in parser.metas if m.get("name") == "pypi:repository-version"] \
        == ["1.1"]
    store = Store(store_root, readonly=True)
    expected = {f.filename: f for f in store.files("foo-bar")}
    assert sorted(text for _, text in parser.anchors) == sorted(expected)
    for attrs, text in parser.anchors:
        f = expected[text]
        href = attrs["href"] or ""
        assert unquote(urlsplit(href).path.rsplit("/", 1)[1]) == text
        assert href.endswith(f"#sha256={f.sha256}")
        if text.endswith(".whl"):
            meta = client.get(urlsplit(urljoin("http://localhost/simple/foo-bar/", href)).path
                              + ".metadata")
            assert attrs["data-core-metadata"] == (
                f"sha256={hashlib.sha256(meta.data).hexdigest()}"
            )
            assert attrs["data-dist-info-metadata"] == attrs["data-core-metadata"]
        else:
            assert "data-core-metadata" not in attrs
    by_text = {text: attrs for attrs, text in parser.anchors}
    assert by_text["foo_bar-1.0-py3-none-any.whl"]["data-requires-python"] == ">=3.9,<4"
    assert b'data-requires-python="&gt;=3.9,&lt;4"' in body
    assert by_text["foo_bar-1.5-py3-none-any.whl"]["data-yanked"] == "bad <build>"
    assert by_text["foo_bar-1.6-py3-none-any.whl"]["data-yanked"] == ""
    assert "data-yanked" not in by_text["foo_bar-1.0-py3-none-any.whl"]
    assert b'data-core-metadata="false"' not in body


def test_yanked_files_stay_downloadable(client: FlaskClient) -> None:
    resp = client.get("/files/foo-bar/foo_bar-1.5-py3-none-any.whl")
    assert resp.status_code == 200


# == D. JSON ===================================================================================


def test_detail_json(client: FlaskClient, store_root: Path) -> None:
    resp = client.get("/simple/foo-bar/", headers={"Accept": PIP_ACCEPT})
    data = json.loads(resp.data)
    assert isinstance(data, dict)
    assert data["meta"]["api-version"] == "1.1"
    assert data["name"] == "foo-bar"
    store = Store(store_root, readonly=True)
    expected = {f.filename: f for f in store.files("foo-bar")}
    assert {f["filename"] for f in data["files"]} == set(expected)
    assert len(data["versions"]) == len(set(data["versions"]))
    assert {f.version for f in expected.values()} <= set(data["versions"])
    for entry in data["files"]:
        f = expected[entry["filename"]]
        assert entry["hashes"] == {"sha256": f.sha256}
        assert "dist-info-metadata" not in entry
        download = client.get(urlsplit(urljoin("http://localhost/simple/foo-bar/",
                                               entry["url"])).path)
        assert download.status_code == 200
        assert entry["size"] == len(download.data) == int(download.headers["Content-Length"])
        assert hashlib.sha256(download.data).hexdigest() == f.sha256
        assert entry["upload-time"] == f.upload_time
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", entry["upload-time"])
        if entry["filename"].endswith(".whl"):
            assert entry["core-metadata"] == {"sha256": f.metadata_sha256}
        else:
            assert entry["core-metadata"] is False
    by_name = {e["filename"]: e for e in data["files"]}
    assert by_name["foo_bar-1.0-py3-none-any.whl"]["requires-python"] == ">=3.9,<4"
    assert by_name["foo_bar-1.5-py3-none-any.whl"]["yanked"] == "bad <build>"
    assert by_name["foo_bar-1.6-py3-none-any.whl"]["yanked"] is True
    assert by_name["foo_bar-1.0-py3-none-any.whl"]["yanked"] is False


def test_html_and_json_agree(client: FlaskClient) -> None:
    html_links = anchors(client.get("/simple/foo-bar/").data)
    from_html = {text: (attrs["href"] or "").split("#sha256=") for attrs, text in html_links}
    data = client.get("/simple/foo-bar/", headers={"Accept": JSON}).get_json(force=True)
    from_json = {f["filename"]: [f["url"], f["hashes"]["sha256"]] for f in data["files"]}
    assert from_html == from_json


def test_upload_time_is_stable_across_refreshes(store_root: Path) -> None:
    app = create_app(ServerOptions(store=store_root, refresh_interval=0))
    client = app.test_client()
    first = client.get("/simple/foo-bar/", headers={"Accept": JSON}).get_json(force=True)
    Store(store_root).publish(make_wheel(store_root.parent / "src", "foo-bar", "9.0"),
                              origin=Origin.UPLOADED)
    second = client.get("/simple/foo-bar/", headers={"Accept": JSON}).get_json(force=True)
    times = {f["filename"]: f["upload-time"] for f in second["files"]}
    for f in first["files"]:
        assert times[f["filename"]] == f["upload-time"]


# == E. core metadata ==========================================================================


@pytest.mark.parametrize("filename", ["foo_bar-1.0-py3-none-any.whl",
                                      "foo_bar-2.0+local-py3-none-any.whl"])
def test_metadata_file_is_exact_and_matches_hash(
    client: FlaskClient, store_root: Path, filename: str
) -> None:
    resp = client.get(f"/files/foo-bar/{filename}.metadata".replace("+", "%2B"))
    assert resp.status_code == 200
    assert resp.data == wheel_metadata(src_file(store_root, filename))
    f = Store(store_root, readonly=True).get(filename)
    assert f is not None
    assert hashlib.sha256(resp.data).hexdigest() == f.metadata_sha256
    # nginx's validator for the same file in an export (tests/test_same_headers.py)
    st = Store(store_root, readonly=True).metadata_path(f).stat()
    assert resp.headers["ETag"] == f'"{int(st.st_mtime):x}-{st.st_size:x}"'
    assert "Content-Encoding" not in resp.headers
    headers = dict(line.split(": ", 1) for line in resp.data.decode().splitlines() if line)
    assert canonicalize_name(headers["Name"]) == "foo-bar"
    assert filename.startswith(f"foo_bar-{headers['Version']}-")


def test_metadata_head_and_conditional(client: FlaskClient) -> None:
    url = "/files/foo-bar/foo_bar-1.0-py3-none-any.whl.metadata"
    full = client.get(url)
    head = client.head(url)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(full.data))
    again = client.get(url, headers={"If-None-Match": full.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


@pytest.mark.parametrize("url", [
    "/files/foo-bar/foo_bar-1.0.tar.gz.metadata",      # sdists never advertise metadata
    "/files/other/foo_bar-1.0-py3-none-any.whl.metadata",  # wrong project directory
    "/files/foo-bar/nope-1.0-py3-none-any.whl.metadata",
])
def test_metadata_not_served_for_what_is_not_advertised(client: FlaskClient, url: str) -> None:
    assert client.get(url).status_code == 404


# == F. files and caching =======================================================================


@pytest.mark.parametrize("filename", ["foo_bar-1.0-py3-none-any.whl", "foo_bar-1.0.tar.gz",
                                      "foo_bar-2.0+local-py3-none-any.whl"])
def test_file_download(client: FlaskClient, store_root: Path, filename: str) -> None:
    resp = client.get(f"/files/foo-bar/{filename}", headers={"Accept-Encoding": "gzip, br"})
    assert resp.status_code == 200
    assert resp.data == src_file(store_root, filename).read_bytes()
    f = Store(store_root, readonly=True).get(filename)
    assert f is not None
    assert hashlib.sha256(resp.data).hexdigest() == f.sha256
    assert "Content-Encoding" not in resp.headers
    assert resp.headers["Content-Type"] == "application/octet-stream"
    st = Store(store_root, readonly=True).file_path(f).stat()
    assert resp.headers["ETag"] == f'"{int(st.st_mtime):x}-{st.st_size:x}"'
    assert resp.headers["Cache-Control"] == "max-age=365000000, immutable"
    assert resp.headers["Last-Modified"]
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert int(resp.headers["Content-Length"]) == f.size


def test_plus_in_filename_both_forms(client: FlaskClient) -> None:
    encoded = client.get("/files/foo-bar/foo_bar-2.0%2Blocal-py3-none-any.whl")
    literal = client.get("/files/foo-bar/foo_bar-2.0+local-py3-none-any.whl")
    assert encoded.status_code == literal.status_code == 200
    assert encoded.data == literal.data


def test_head_file(client: FlaskClient) -> None:
    resp = client.head("/files/foo-bar/foo_bar-1.0-py3-none-any.whl")
    assert resp.status_code == 200
    assert resp.data == b""
    assert int(resp.headers["Content-Length"]) > 0
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert "Content-Encoding" not in resp.headers


def test_range_requests(client: FlaskClient, store_root: Path) -> None:
    url = "/files/foo-bar/foo_bar-1.0-py3-none-any.whl"
    data = src_file(store_root, "foo_bar-1.0-py3-none-any.whl").read_bytes()
    etag = client.head(url).headers["ETag"]
    last_modified = client.head(url).headers["Last-Modified"]

    part = client.get(url, headers={"Range": "bytes=10-29"})
    assert part.status_code == 206
    assert part.data == data[10:30]
    assert part.headers["Content-Range"] == f"bytes 10-29/{len(data)}"
    assert part.headers["Content-Length"] == "20"

    tail = client.get(url, headers={"Range": "bytes=-22"})  # zip end record, as uv reads it
    assert tail.status_code == 206 and tail.data == data[-22:]

    for validator in (etag, last_modified):
        resumed = client.get(url, headers={"Range": "bytes=100-", "If-Range": validator})
        assert resumed.status_code == 206
        assert resumed.data == data[100:]
    stale = client.get(url, headers={"Range": "bytes=100-", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.data == data

    beyond = client.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416


def test_file_conditional_get(client: FlaskClient) -> None:
    url = "/files/foo-bar/foo_bar-1.0-py3-none-any.whl"
    etag = client.get(url).headers["ETag"]
    assert not etag.startswith("W/")
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"x"'}).status_code == 200


@pytest.mark.parametrize("url", ["/files/foo-bar/nope-1.0-py3-none-any.whl",
                                 "/files/other/foo_bar-1.0-py3-none-any.whl",
                                 "/files/foo-bar/../catalogue.sqlite3"])
def test_unknown_files_404(client: FlaskClient, url: str) -> None:
    assert client.get(url).status_code == 404


def test_unlisted_debris_is_never_served(client: FlaskClient, store_root: Path) -> None:
    (store_root / "files" / "foo-bar" / "foo_bar-7.0-py3-none-any.whl").write_bytes(b"junk")
    assert client.get("/files/foo-bar/foo_bar-7.0-py3-none-any.whl").status_code == 404


@pytest.mark.parametrize("accept", ["text/html", JSON, V1_HTML])
@pytest.mark.parametrize("path", ["/simple/", "/simple/foo-bar/"])
def test_page_validators_and_304(client: FlaskClient, path: str, accept: str) -> None:
    first = client.get(path, headers={"Accept": accept})
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag), "a strong ETag"
    assert first.headers["Last-Modified"]
    assert first.headers["Cache-Control"] == "max-age=0, must-revalidate"
    again = client.get(path, headers={"Accept": accept, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Vary"] == "Accept"
    weak = client.get(path, headers={"Accept": accept, "If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    other = client.get(path, headers={"Accept": accept, "If-None-Match": '"nope"'})
    assert other.status_code == 200
    since = client.get(path, headers={"Accept": accept,
                                      "If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304


def test_each_representation_has_its_own_etag(client: FlaskClient) -> None:
    etags = {client.get("/simple/foo-bar/", headers={"Accept": a}).headers["ETag"]
             for a in ("text/html", V1_HTML, JSON)}
    assert len(etags) == 3
    html_etag = client.get("/simple/foo-bar/", headers={"Accept": "text/html"}).headers["ETag"]
    cross = client.get("/simple/foo-bar/", headers={"Accept": JSON, "If-None-Match": html_etag})
    assert cross.status_code == 200


def test_a_page_answered_again_is_the_same_until_the_store_changes(
        app: Flask, client: FlaskClient, store_root: Path, tmp_path: Path) -> None:
    """Page answers are remembered per request (path, Accept, query) in the snapshot: a
    repeat gets the same bytes and validators, conditional requests still get their 304,
    and a publish is seen by the very next request."""
    state: IndexState = app.extensions["wheelhouse"].state
    first = client.get("/simple/foo-bar/", headers={"Accept": PIP_ACCEPT})
    assert len(state.current().answered) == 1
    again = client.get("/simple/foo-bar/", headers={"Accept": PIP_ACCEPT})
    assert len(state.current().answered) == 1
    assert again.data == first.data
    assert dict(again.headers) == dict(first.headers)
    etag = first.headers["ETag"]
    assert client.get("/simple/foo-bar/", headers={
        "Accept": PIP_ACCEPT, "If-None-Match": etag}).status_code == 304
    assert client.get("/simple/foo-bar/", headers={
        "Accept": PIP_ACCEPT, "If-None-Match": '"other"'}).status_code == 200
    # the same path with another Accept or query is its own answer, not the remembered one
    assert mimetype(client.get("/simple/foo-bar/", headers={"Accept": "text/html"})) == (
        "text/html")
    assert mimetype(client.get(f"/simple/foo-bar/?format={JSON}",
                               headers={"Accept": PIP_ACCEPT})) == JSON
    assert client.head("/simple/foo-bar/", headers={"Accept": PIP_ACCEPT}).data == b""
    src = tmp_path / "later"
    src.mkdir()
    Store(store_root).publish(make_wheel(src, "foo-bar", "3.0"), origin=Origin.UPLOADED)
    newer = client.get("/simple/foo-bar/", headers={"Accept": PIP_ACCEPT})
    assert "foo_bar-3.0-py3-none-any.whl" in newer.data.decode()
    assert newer.headers["ETag"] != etag
    assert client.get("/simple/foo-bar/", headers={
        "Accept": PIP_ACCEPT, "If-None-Match": etag}).status_code == 200


def test_remembered_answers_are_bounded(app: Flask, client: FlaskClient,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A client inventing Accept headers cannot grow a worker's memory: past the limit,
    answers are still right, just not remembered."""
    monkeypatch.setattr(hot, "_ANSWERED_LIMIT", 3)
    for i in range(12):
        resp = client.get("/simple/foo-bar/", headers={"Accept": f"text/html, x/y{i}"})
        assert resp.status_code == 200 and mimetype(resp) == "text/html"
        assert client.get("/simple/nobody/", headers={"Accept": f"x/{i}, */*"}).status_code == (
            404)
    state: IndexState = app.extensions["wheelhouse"].state
    assert 0 < len(state.current().answered) <= 3


def test_head_page(client: FlaskClient) -> None:
    full = client.get("/simple/foo-bar/", headers={"Accept": JSON})
    head = client.head("/simple/foo-bar/", headers={"Accept": JSON})
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == full.headers["Content-Length"]
    assert head.headers["ETag"] == full.headers["ETag"]


def test_page_max_age_option(store_root: Path) -> None:
    client = create_app(ServerOptions(store=store_root, page_max_age=30)).test_client()
    assert client.get("/simple/").headers["Cache-Control"] == "max-age=30, must-revalidate"


def test_other_methods_are_not_allowed(client: FlaskClient) -> None:
    assert client.post("/simple/").status_code == 405
    assert client.put("/simple/foo-bar/").status_code == 405
    assert client.delete("/files/foo-bar/foo_bar-1.0-py3-none-any.whl").status_code == 405


# == G. flat --find-links page ==================================================================


def test_links_page(client: FlaskClient, store_root: Path) -> None:
    resp = client.get("/links/", headers={"Accept": "text/html"})
    assert resp.status_code == 200
    assert mimetype(resp) == "text/html"
    store = Store(store_root, readonly=True)
    files = {f.filename: f for f in store.files()}
    links = anchors(resp.data)
    assert sorted(text for _, text in links) == sorted(files)
    for attrs, text in links:
        url = urljoin("http://localhost/links/", attrs["href"] or "")
        assert url.endswith(f"#sha256={files[text].sha256}")
        got = client.get(urlsplit(url).path)
        assert hashlib.sha256(got.data).hexdigest() == files[text].sha256
    etag = resp.headers["ETag"]
    assert client.get("/links/", headers={"If-None-Match": etag}).status_code == 304
    # whatever a client asks for, the flat page is HTML (pip rejects anything else)
    assert mimetype(client.get("/links/", headers={"Accept": JSON})) == "text/html"


# == behaviour: caching, refresh, parity ========================================================


def test_health(client: FlaskClient) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["status"] == "ok"
    assert data["files"] == 6
    assert data["projects"] == 2
    assert data["generation"] >= 6


def test_missing_store_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no wheelhouse store"):
        create_app(ServerOptions(store=tmp_path / "nothing"))


def test_unreadable_catalogue_at_start_is_a_store_error(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "catalogue.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="cannot read the catalogue"):
        create_app(ServerOptions(store=root))


def test_requests_neither_rescan_nor_rerender(store_root: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(ServerOptions(store=store_root, refresh_interval=3600))
    state: IndexState = app.extensions["wheelhouse"].state
    calls: list[str] = []
    def files(*_args: object) -> list[object]:
        calls.append("files")
        return []

    def generation() -> int:
        calls.append("generation")
        return 0

    monkeypatch.setattr(state.store, "files", files)
    monkeypatch.setattr(state.store, "generation", generation)
    for name in ("project_html", "project_json", "project_list_html", "project_list_json"):
        monkeypatch.setattr(render, name, lambda *a, n=name: calls.append(n))
    client = app.test_client()
    for _ in range(20):
        assert client.get("/simple/foo-bar/", headers={"Accept": PIP_ACCEPT}).status_code == 200
        assert client.get("/simple/").status_code == 200
        assert client.get("/files/foo-bar/foo_bar-1.0-py3-none-any.whl").status_code == 200
    assert calls == []


def test_new_publication_is_visible_within_a_second(store_root: Path) -> None:
    client = create_app(ServerOptions(store=store_root)).test_client()
    before = client.get("/simple/other/")
    foo_etag = client.get("/simple/foo-bar/").headers["ETag"]
    Store(store_root).publish(make_wheel(store_root.parent / "src", "other", "0.2"),
                              origin=Origin.UPLOADED)
    deadline = time.monotonic() + 1.0
    while True:
        after = client.get("/simple/other/")
        if b"other-0.2-py3-none-any.whl" in after.data:
            break
        assert time.monotonic() < deadline, "new file not visible within a second"
        time.sleep(0.05)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert client.get("/simple/foo-bar/").headers["ETag"] == foo_etag
    assert client.get("/files/other/other-0.2-py3-none-any.whl").status_code == 200


def test_only_changed_projects_are_rerendered(store_root: Path) -> None:
    app = create_app(ServerOptions(store=store_root, refresh_interval=3600))
    state: IndexState = app.extensions["wheelhouse"].state
    old = state.current()
    Store(store_root).set_yanked("foo_bar-1.0-py3-none-any.whl", "oops")
    new = state.refresh()
    assert new.generation > old.generation
    other, foo_bar = NormalizedName("other"), NormalizedName("foo-bar")
    assert new.projects[other] is old.projects[other]
    assert new.projects[foo_bar] is not old.projects[foo_bar]
    assert new.root is old.root  # same set of projects
    body = app.test_client().get("/simple/foo-bar/").data
    assert b'data-yanked="oops"' in body


def test_new_project_appears_in_project_list(store_root: Path) -> None:
    app = create_app(ServerOptions(store=store_root, refresh_interval=3600))
    client = app.test_client()
    assert client.get("/simple/newcomer/").status_code == 404
    Store(store_root).publish(make_wheel(store_root.parent / "src", "NewComer", "1.0"),
                              origin=Origin.UPLOADED)
    app.extensions["wheelhouse"].state.refresh()
    assert client.get("/simple/newcomer/").status_code == 200
    assert "newcomer" in [t for _, t in anchors(client.get("/simple/").data)]


def test_unreadable_catalogue_keeps_the_last_good_state(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(ServerOptions(store=store_root, refresh_interval=0))
    state: IndexState = app.extensions["wheelhouse"].state

    def broken() -> int:
        raise OSError("disk on fire")

    monkeypatch.setattr(state.store, "generation", broken)
    resp = app.test_client().get("/simple/foo-bar/")
    assert resp.status_code == 200
    assert b"foo_bar-1.0-py3-none-any.whl" in resp.data


def test_hot_path_and_flask_answer_alike(store_root: Path) -> None:
    hot = create_app(ServerOptions(store=store_root)).test_client()
    plain = create_app(ServerOptions(store=store_root, hot_path=False)).test_client()
    requests: list[tuple[str, str, dict[str, str]]] = []
    for path in ["/simple/", "/simple", "/simple/foo-bar/", "/simple/Foo_Bar", "/simple/nope/",
                 "/simple/foo-bar/?format=text/html",
                 "/files/foo-bar/foo_bar-1.0-py3-none-any.whl.metadata",
                 "/files/foo-bar/foo_bar-1.0.tar.gz.metadata"]:
        for accept in [None, JSON, PIP_ACCEPT, V1_HTML, "application/json"]:
            headers = {"Accept": accept} if accept else {}
            requests.append(("GET", path, headers))
            requests.append(("HEAD", path, headers))
    etag = hot.get("/simple/foo-bar/").headers["ETag"]
    requests.append(("GET", "/simple/foo-bar/", {"If-None-Match": etag}))
    for path in ["/files/foo-bar/foo_bar-1.0-py3-none-any.whl", "/files/foo-bar/nope.whl",
                 "/files/foo-bar/foo_bar-1.0-py3-none-any.whl.metadata"]:
        etag = hot.get(path).headers.get("ETag", "")
        for headers in [{}, {"Range": "bytes=-22"}, {"Range": "bytes=999999-"},
                        {"If-None-Match": etag}, {"If-None-Match": etag, "Range": "bytes=0-1"},
                        {"Range": "bytes=3-", "If-Range": etag}]:
            requests.append(("GET", path, headers))
            requests.append(("HEAD", path, headers))
    for method, path, headers in requests:
        a = hot.open(path, method=method, headers=headers)
        b = plain.open(path, method=method, headers=headers)
        assert a.status_code == b.status_code, (method, path, headers)
        assert a.data == b.data, (method, path, headers)
        for name in ("Content-Type", "Content-Length", "ETag", "Cache-Control", "Vary",
                     "Location", "Last-Modified", "Accept-Ranges", "Content-Range"):
            if name == "Last-Modified" and a.status_code == 304:
                # A file's 304 repeats it, as nginx's does for the export (the hot path
                # answers as nginx); werkzeug drops it from every 304, which RFC 9110
                # §15.4.5 allows beside an ETag.
                continue
            assert a.headers.get(name) == b.headers.get(name), (method, path, headers, name)


def test_concurrent_requests_during_publishing(store_root: Path) -> None:
    app = create_app(ServerOptions(store=store_root, refresh_interval=0.01))
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        client = app.test_client()
        while not stop.is_set():
            resp = client.get("/simple/other/", headers={"Accept": PIP_ACCEPT})
            if resp.status_code != 200:
                errors.append(f"status {resp.status_code}")
                continue
            data = json.loads(resp.data)
            if hashlib.sha256(resp.data).hexdigest() != resp.headers["ETag"].strip('"'):
                errors.append("etag does not match body")
            versions = set(data["versions"])
            if any(f["filename"].split("-")[1] not in versions for f in data["files"]):
                errors.append("a file's version is missing from versions")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    store = Store(store_root)
    src = store_root.parent / "src"
    try:
        for i in range(5):
            store.publish(make_wheel(src, "other", f"1.{i}"), origin=Origin.UPLOADED)
    finally:
        time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    data = app.test_client().get("/simple/other/", headers={"Accept": JSON}).get_json(force=True)
    assert {f"1.{i}" for i in range(5)} <= set(data["versions"])


# == serve() ===================================================================================


def test_port_in_use_is_one_clear_serve_error(store_root: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServeError) as info:
            serve(ServerOptions(store=store_root, host="127.0.0.1", port=port))
    assert str(info.value) == f"port {port} on 127.0.0.1 is already in use"
    assert info.value.hint == "stop the other server or choose another --port"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_bad_host_and_port_are_serve_errors(store_root: Path) -> None:
    with pytest.raises(ServeError, match="not a TCP port"):
        serve(ServerOptions(store=store_root, host="127.0.0.1", port=70000))
    with pytest.raises(ServeError, match="not an address of this machine"):
        # TEST-NET-1: never local, nothing is sent
        serve(ServerOptions(store=store_root, host="192.0.2.1", port=0))
    with pytest.raises(ServeError, match="cannot listen on"):
        serve(ServerOptions(store=store_root, host="no-such-host.invalid", port=0))


def test_busy_port_fails_before_the_store_is_read(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ServeError):
            serve(ServerOptions(store=tmp_path / "no-store", host="127.0.0.1",
                                port=busy.getsockname()[1]))


def test_make_server_in_a_thread(store_root: Path) -> None:
    import urllib.request

    server = make_server(local_options(store_root, threads=2))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.url == f"http://127.0.0.1:{server.port}/simple/"
        req = urllib.request.Request(server.url + "foo-bar/", headers={"Accept": PIP_ACCEPT})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.headers["Content-Type"] == JSON
            assert json.load(resp)["name"] == "foo-bar"
        url = f"http://127.0.0.1:{server.port}/files/foo-bar/foo_bar-2.0%2Blocal-py3-none-any.whl"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.headers.get("Content-Encoding") is None
            assert resp.read() == src_file(store_root,
                                           "foo_bar-2.0+local-py3-none-any.whl").read_bytes()
    finally:
        server.shutdown()
        thread.join(timeout=10)


# == real clients against the real server =======================================================

PROBE_A = "wh-e2e-probe-a"
PROBE_B = "wh-e2e-probe-b"
MARKER = "from-wheelhouse-e2e-a-1.0"


def _client_env(tmp: Path) -> dict[str, str]:
    """The environment for client pips and uvs: none of the host's extra sources."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_")) and k.lower() not in ("http_proxy",
                                                                     "https_proxy")}
    env.update(
        PIP_CONFIG_FILE="/dev/null",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


class LiveServer:
    def __init__(self, base: str, log: Path) -> None:
        self.base = base
        self.log = log

    def log_since(self, offset: int) -> str:
        return self.log.read_bytes()[offset:].decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log.stat().st_size


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    src = tmp / "src"
    src.mkdir()
    store = Store(tmp / "store")
    for path in [
        make_wheel(src, PROBE_A, "1.0", requires_dist=(f"{PROBE_B}==1.0+local",),
                   module_source=f"VALUE = {MARKER!r}\n"),
        # yanked: plain installs must skip it
        make_wheel(src, PROBE_A, "2.0", module_source="VALUE = 'yanked'\n"),
        # needs a Python that does not exist (a lower bound: uv ignores upper bounds)
        make_wheel(src, PROBE_A, "3.0", requires_python=">=4",
                   module_source="VALUE = 'requires-python ignored'\n"),
        make_wheel(src, PROBE_B, "1.0+local"),
    ]:
        store.publish(path, origin=Origin.UPLOADED)
    store.set_yanked("wh_e2e_probe_a-2.0-py3-none-any.whl", "broken on purpose")
    log = tmp / "server.log"
    code = (
        "import sys; from pathlib import Path; "
        "from wheelhouse.options import ServerOptions; "
        "from wheelhouse.server.serving import serve; "
        "serve(ServerOptions(store=Path(sys.argv[1]), host='127.0.0.1', port=0, threads=4), "
        "on_ready=lambda line: print(line, flush=True))"
    )
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(tmp / "store")],
            stdout=subprocess.PIPE, stderr=err, text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"Serving (.+) at (http://127\.0\.0\.1:\d+)/simple/", line)
        assert match, f"unexpected ready line {line!r}; log: {log.read_text()}"
        assert match.group(1) == str(tmp / "store")
        yield LiveServer(match.group(2), log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _venv(path: Path, env: dict[str, str]) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   env=env)
    return path / "bin" / "python"


def _assert_probe_installed(python: Path, env: dict[str, str]) -> None:
    out = subprocess.run(
        [str(python), "-c",
         "import wh_e2e_probe_a, wh_e2e_probe_b; "
         "print(wh_e2e_probe_a.VALUE, wh_e2e_probe_b.VERSION)"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.split()
    assert out == [MARKER, "1.0+local"]


def _assert_served(log: str, *, index: bool) -> None:
    prefix = "/simple" if index else "/links"
    assert f'"GET {prefix}/' in log
    assert re.search(r'"GET /files/wh-e2e-probe-a/wh_e2e_probe_a-1\.0-py3-none-any\.whl '
                     r'HTTP/1\.1" 200', log), log
    assert re.search(r'"GET /files/wh-e2e-probe-b/wh_e2e_probe_b-1\.0(\+|%2B)local'
                     r'-py3-none-any\.whl HTTP/1\.1" 200', log), log
    assert "wh_e2e_probe_a-2.0" not in log.replace(".metadata", "")
    assert "wh_e2e_probe_a-3.0-py3-none-any.whl HTTP" not in log


def _pip(python: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir",
         "--only-binary", ":all:", "--disable-pip-version-check", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )


@pytest.mark.slow
def test_pip_installs_from_the_index(live_server: LiveServer, tmp_path: Path) -> None:
    env = _client_env(tmp_path)
    python = _venv(tmp_path / "venv", env)
    report = tmp_path / "report.json"
    offset = live_server.log_size()
    result = _pip(python, env, "--index-url", f"{live_server.base}/simple/",
                  "--report", str(report), PROBE_A)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = json.loads(report.read_text())["install"]
    urls = {i["metadata"]["name"]: i["download_info"]["url"] for i in installed}
    assert set(urls) == {PROBE_A, PROBE_B}
    for url in urls.values():
        assert url.startswith(f"{live_server.base}/files/")
    assert urls[PROBE_A].endswith("wh_e2e_probe_a-1.0-py3-none-any.whl")
    log = live_server.log_since(offset)
    _assert_served(log, index=True)
    # pip took the dependency from the PEP 658 file and verified its hash
    assert ".whl.metadata HTTP/1.1\" 200" in log
    _assert_probe_installed(python, env)


@pytest.mark.slow
def test_pip_installs_from_the_find_links_page(live_server: LiveServer, tmp_path: Path) -> None:
    env = _client_env(tmp_path)
    python = _venv(tmp_path / "venv", env)
    report = tmp_path / "report.json"
    offset = live_server.log_size()
    result = _pip(python, env, "--no-index", "--find-links", f"{live_server.base}/links/",
                  "--report", str(report), PROBE_A)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = json.loads(report.read_text())["install"]
    for item in installed:
        assert item["download_info"]["url"].startswith(f"{live_server.base}/files/")
    assert {i["metadata"]["version"] for i in installed} == {"1.0", "1.0+local"}
    _assert_served(live_server.log_since(offset), index=False)
    _assert_probe_installed(python, env)


def _uv(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or "uv"
    return subprocess.run([uv, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["index", "find-links"])
def test_uv_installs_from_the_server(
    live_server: LiveServer, tmp_path: Path, source: str
) -> None:
    env = _client_env(tmp_path)
    venv = tmp_path / "venv"
    made = _uv(env, "venv", "--python", sys.executable, str(venv))
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    offset = live_server.log_size()
    if source == "index":
        where = ["--index-url", f"{live_server.base}/simple/"]
        requirement = PROBE_A
    else:
        where = ["--no-index", "--find-links", f"{live_server.base}/links/"]
        # uv ranks --find-links files without looking at data-yanked (its Simple-API path
        # does skip yanked files), so the flat-page run pins the version.
        requirement = f"{PROBE_A}==1.0"
    result = _uv(env, "pip", "install", "--python", str(python), "--only-binary", ":all:",
                 *where, requirement)
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_served(live_server.log_since(offset), index=source == "index")
    _assert_probe_installed(python, env)
