"""Tests of ``wheelhouse.simple.client``, the one client for simple pages: decoding, Content-Type
dispatch, bounds, redirects, malformed pages, and reading METADATA without the wheel.

Servers listen on 127.0.0.1 only: a scripted ``http.server`` that answers what each test
sets, and the real wheelhouse server for PEP 658 files and Range requests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import random
import re
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import local_options
from tests.distributions import wheel_bytes, write_wheel
from wheelhouse.errors import FetchError, MetadataUnavailable, UpstreamError
from wheelhouse.server.serving import make_server
from wheelhouse.simple.client import ACCEPT, SimpleClient
from wheelhouse.simple.pages import Candidate, candidate_from, parse_json_page
from wheelhouse.simple.zipmember import TAIL_BYTES, read_member
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store
from wheelhouse.upstream import Upstream

JSON = "application/vnd.pypi.simple.v1+json"
SHA = "ab" * 32
Handler = Callable[[BaseHTTPRequestHandler], None]


def send(req: BaseHTTPRequestHandler, status: int, body: bytes = b"", ctype: str = "text/html",
         **headers: str) -> None:
    req.send_response(status)
    req.send_header("Content-Type", ctype)
    req.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        req.send_header(name.replace("_", "-"), value)
    req.end_headers()
    # The client may stop reading, as it should for a body it does not want.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        req.wfile.write(body)


class Scripted:
    """Answers each path with what a test set in ``routes``; records what was asked."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: list[str] = []
        self.headers: list[dict[str, str]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                scripted.hits.append(self.path)
                scripted.headers.append(dict(self.headers))
                route = scripted.routes.get(self.path)
                if route is None:
                    send(self, 404, b"not here", "text/plain")
                else:
                    route(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def page(self, path: str, body: bytes, ctype: str = "text/html", **headers: str) -> None:
        self.routes[path] = lambda req: send(req, 200, body, ctype, **headers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.close()


@pytest.fixture
def client() -> Iterator[SimpleClient]:
    c = SimpleClient("tests", deadline=10.0)
    yield c
    c.close()


def anchor(filename: str, extra: str = "") -> str:
    return f'<a href="/files/{filename}#sha256={SHA}" {extra}>{filename}</a>'


# == decoding and dispatch =====================================================================


def test_html_without_charset_is_utf8(scripted: Scripted, client: SimpleClient) -> None:
    body = anchor("demo-1.0.tar.gz", 'data-yanked="kaputt: süß ✓"').encode("utf-8")
    scripted.page("/simple/demo/", body, "text/html")
    (c,) = client.project_page(scripted.base + "/simple/", "demo") or []
    assert c.yanked == "kaputt: süß ✓"
    assert c.url == scripted.base + "/files/demo-1.0.tar.gz" and c.sha256 == SHA


def test_declared_charset_is_honoured(scripted: Scripted, client: SimpleClient) -> None:
    body = anchor("demo-1.0.tar.gz", 'data-yanked="süß"').encode("latin-1")
    scripted.page("/simple/demo/", body, "text/html; charset=ISO-8859-1")
    (c,) = client.project_page(scripted.base + "/simple/", "demo") or []
    assert c.yanked == "süß"


@pytest.mark.parametrize("ctype", ["text/html", "application/vnd.pypi.simple.v1+html",
                                   "Text/HTML; charset=utf-8"])
def test_html_types_are_parsed_as_html(scripted: Scripted, client: SimpleClient,
                                       ctype: str) -> None:
    scripted.page("/simple/demo/", anchor("demo-1.0.tar.gz").encode(), ctype)
    found = client.project_page(scripted.base + "/simple/", "demo")
    assert [c.filename for c in found or []] == ["demo-1.0.tar.gz"]


def test_json_is_parsed_as_json(scripted: Scripted, client: SimpleClient) -> None:
    doc = {"meta": {"api-version": "1.1"}, "name": "demo", "files": [
        {"filename": "demo-1.0-py3-none-any.whl", "url": "../../files/demo-1.0-py3-none-any.whl",
         "hashes": {"sha256": SHA.upper()}, "requires-python": ">=3.9", "size": 1234,
         "upload-time": "2024-01-02T03:04:05Z", "core-metadata": {"sha256": "cd" * 32},
         "yanked": "reason ✓"},
        {"filename": "demo-1.0.tar.gz", "url": "https://elsewhere.example/demo-1.0.tar.gz",
         "hashes": {}, "core-metadata": False, "yanked": True},
        {"filename": "demo-0.9-py3-none-any.whl", "url": "x.whl", "hashes": {},
         "dist-info-metadata": True},
    ]}
    scripted.page("/simple/demo/", json.dumps(doc, ensure_ascii=False).encode(), JSON)
    whl, sdist, old = client.project_page(scripted.base + "/simple/", "demo") or []
    assert whl.url == scripted.base + "/files/demo-1.0-py3-none-any.whl"
    assert whl.sha256 == SHA and whl.requires_python == ">=3.9" and whl.yanked == "reason ✓"
    assert whl.size == 1234 and whl.upload_time == "2024-01-02T03:04:05Z"
    assert whl.core_metadata == "cd" * 32
    assert sdist.sha256 is None and sdist.yanked == "" and sdist.core_metadata is None
    assert old.core_metadata is True and old.size is None


def test_html_core_metadata_attributes() -> None:
    from wheelhouse.simple.pages import parse_html_links

    page = "".join([
        anchor("a-1.0-py3-none-any.whl", f'data-core-metadata="sha256={"cd" * 32}"'),
        anchor("b-1.0-py3-none-any.whl", 'data-core-metadata="true"'),
        anchor("c-1.0-py3-none-any.whl", 'data-dist-info-metadata="sha256=nothex"'),
        anchor("d-1.0-py3-none-any.whl", "data-core-metadata data-yanked"),
        anchor("e-1.0-py3-none-any.whl"),
    ])
    found = {str(c.project): c
             for c in parse_html_links(page, "https://i.example/simple/x/", "i")}
    assert found["a"].core_metadata == "cd" * 32
    assert found["b"].core_metadata is True
    assert found["c"].core_metadata is True  # a hash we cannot use is not passed on
    assert found["d"].core_metadata is True and found["d"].yanked == ""
    assert found["e"].core_metadata is None and found["e"].yanked is None


def test_unknown_content_type_is_an_error(scripted: Scripted, client: SimpleClient) -> None:
    scripted.page("/simple/demo/", b'{"files": []}', "application/json")
    with pytest.raises(UpstreamError) as info:
        client.project_page(scripted.base + "/simple/", "demo")
    assert "application/json" in info.value.message
    assert f"{scripted.base}/simple/demo/" in info.value.message


def test_flat_pages_ask_for_html_and_refuse_json(scripted: Scripted,
                                                 client: SimpleClient) -> None:
    scripted.page("/links/", anchor("demo-1.0.tar.gz").encode())
    assert [c.filename for c in client.flat_page(scripted.base + "/links/")] == [
        "demo-1.0.tar.gz"]
    assert scripted.headers[-1]["Accept"] == "text/html"
    scripted.page("/links/", b'{"files": []}', JSON)
    with pytest.raises(UpstreamError, match="not a simple page"):
        client.flat_page(scripted.base + "/links/")


def test_project_pages_negotiate_like_pip(scripted: Scripted, client: SimpleClient) -> None:
    scripted.page("/simple/demo/", b"")
    client.project_page(scripted.base + "/simple", "demo")
    assert scripted.hits == ["/simple/demo/"]
    assert scripted.headers[0]["Accept"] == ACCEPT
    assert scripted.headers[0]["User-Agent"].startswith("wheelhouse/")
    assert scripted.headers[0]["User-Agent"].endswith("(tests)")


# == malformed pages ===========================================================================

MALFORMED = [
    b"not json",
    b"\xff\xfe{}",
    b"[]",
    b'"files"',
    b"{}",
    b'{"files": {}}',
    b'{"files": null}',
    b'{"files": [1]}',
    b'{"files": [["demo-1.0.tar.gz"]]}',
    b'{"files": [{"url": "x"}]}',
    b'{"files": [{"filename": 1, "url": "x"}]}',
    b'{"files": [{"filename": "demo-1.0.tar.gz", "url": null}]}',
    b'{"files": [{"filename": "demo-1.0.tar.gz", "url": "x", "hashes": []}]}',
    b'{"files": [{"filename": "demo-1.0.tar.gz", "url": "x", "hashes": "sha256=x"}]}',
    b'{"files": [{"filename": "demo-1.0.tar.gz", "url": "x", "hashes": {}, "yanked": 1}]}',
    b'{"files": [{"filename": "demo-1.0.tar.gz", "url": "x", "requires-python": 3}]}',
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_json_is_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed PEP 691 JSON"):
        parse_json_page(body, "https://i.example/simple/demo/", "i")


def test_malformed_json_through_the_client(scripted: Scripted, client: SimpleClient) -> None:
    scripted.page("/simple/demo/", b'{"files": [1]}', JSON)
    with pytest.raises(UpstreamError, match="malformed PEP 691 JSON"):
        client.project_page(scripted.base + "/simple/", "demo")


def test_invalid_hashes_drop_the_file(scripted: Scripted, client: SimpleClient,
                                      caplog: pytest.LogCaptureFixture) -> None:
    html = (anchor("demo-1.0.tar.gz") + '<a href="/f/demo-1.1.tar.gz#sha256=abc">x</a>'
            + '<a href="/f/demo-1.2.tar.gz#sha256=' + "g" * 64 + '">x</a>'
            + '<a href="/f/demo-1.3.tar.gz#md5=abc">x</a>')
    scripted.page("/simple/demo/", html.encode())
    with caplog.at_level(logging.WARNING, logger="wheelhouse"):
        found = client.project_page(scripted.base + "/simple/", "demo") or []
    assert {c.filename: c.sha256 for c in found} == {"demo-1.0.tar.gz": SHA,
                                                     "demo-1.3.tar.gz": None}
    assert "demo-1.1.tar.gz" in caplog.text and "demo-1.2.tar.gz" in caplog.text
    doc = {"files": [{"filename": "demo-1.0.tar.gz", "url": "a", "hashes": {"sha256": "12"}},
                     {"filename": "demo-1.1.tar.gz", "url": "b", "hashes": {"sha256": 5}},
                     {"filename": "demo-1.2.tar.gz", "url": "c", "hashes": {"md5": "x"}}]}
    found = parse_json_page(json.dumps(doc).encode(), "https://i.example/simple/demo/", "i")
    assert [c.filename for c in found] == ["demo-1.2.tar.gz"]


# == statuses, retries, bounds ==================================================================


@pytest.mark.parametrize("status", [404, 410])
def test_unknown_project_is_none(scripted: Scripted, client: SimpleClient, status: int) -> None:
    scripted.routes["/simple/demo/"] = lambda req: send(req, status, b"gone", "text/plain")
    assert client.project_page(scripted.base + "/simple/", "demo") is None


def test_other_statuses_are_fetch_errors(scripted: Scripted, client: SimpleClient) -> None:
    scripted.routes["/simple/demo/"] = lambda req: send(req, 500, b"it broke", "text/plain")
    with pytest.raises(FetchError) as info:
        client.project_page(scripted.base + "/simple/", "demo")
    assert info.value.status == 500 and info.value.detail == "it broke"
    assert "HTTP 500" in info.value.message
    assert scripted.hits == ["/simple/demo/"]  # 500 is not retried


def test_503_is_retried(scripted: Scripted, client: SimpleClient) -> None:
    answers = iter([503, 200])
    scripted.routes["/simple/demo/"] = lambda req: send(
        req, next(answers), anchor("demo-1.0.tar.gz").encode(), Retry_After="3600")
    found = client.project_page(scripted.base + "/simple/", "demo")
    assert [c.filename for c in found or []] == ["demo-1.0.tar.gz"]
    assert scripted.hits == ["/simple/demo/"] * 2


def test_unreachable_index_is_a_fetch_error_without_status(client: SimpleClient) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match="cannot reach") as info:
        client.project_page(f"http://127.0.0.1:{port}/simple/", "demo")
    assert info.value.status is None


@pytest.mark.parametrize("with_length", [True, False])
def test_page_size_is_bounded(scripted: Scripted, with_length: bool) -> None:
    body = anchor("demo-1.0.tar.gz").encode() * 200

    def route(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html")
        if with_length:
            req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            req.wfile.write(body)

    scripted.routes["/simple/demo/"] = route
    small = SimpleClient("tests", max_page_bytes=len(body) // 3)
    with pytest.raises(UpstreamError, match=f"larger than {len(body) // 3} bytes"):
        small.project_page(scripted.base + "/simple/", "demo")
    assert SimpleClient("tests", max_page_bytes=len(body)).project_page(
        scripted.base + "/simple/", "demo")


def test_the_deadline_covers_the_whole_answer(scripted: Scripted) -> None:
    # Each read gets a byte well within any per-read timeout; only a total deadline ends it.
    def drip(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html")
        req.end_headers()
        try:
            for _ in range(100):
                req.wfile.write(b" ")
                req.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    scripted.routes["/simple/demo/"] = drip
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"took longer than 0\.5 s"):
        SimpleClient("tests", deadline=0.5).project_page(scripted.base + "/simple/", "demo")
    assert time.monotonic() - started < 2.5


# == redirects and credentials =================================================================


def test_same_origin_redirects_are_followed(scripted: Scripted, client: SimpleClient) -> None:
    scripted.routes["/simple/demo/"] = lambda req: send(req, 301, Location="/moved/demo/")
    scripted.routes["/moved/demo/"] = lambda req: send(req, 302, Location="page/")
    scripted.page("/moved/demo/page/", b'<a href="demo-1.0.tar.gz">x</a>')
    (c,) = client.project_page(scripted.base + "/simple/", "demo") or []
    # relative links resolve against the final URL
    assert c.url == scripted.base + "/moved/demo/page/demo-1.0.tar.gz"


def test_off_origin_redirects_are_refused_unrequested(scripted: Scripted,
                                                      client: SimpleClient) -> None:
    other = Scripted()
    try:
        other.page("/simple/demo/", anchor("demo-1.0.tar.gz").encode())
        scripted.routes["/simple/demo/"] = lambda req: send(
            req, 302, Location=other.base + "/simple/demo/")
        with pytest.raises(UpstreamError, match="redirects to another origin"):
            client.project_page(scripted.base + "/simple/", "demo")
        assert other.hits == []
    finally:
        other.close()


def test_redirect_loops_end(scripted: Scripted, client: SimpleClient) -> None:
    scripted.routes["/simple/demo/"] = lambda req: send(req, 302, Location="/simple/demo/")
    with pytest.raises(UpstreamError, match="redirects more than"):
        client.project_page(scripted.base + "/simple/", "demo")
    assert 2 < len(scripted.hits) < 10


def test_credentials_are_sent_but_never_shown(scripted: Scripted,
                                              client: SimpleClient) -> None:
    scripted.routes["/simple/demo/"] = lambda req: send(req, 301, Location="/private/demo/")
    scripted.routes["/private/demo/"] = lambda req: send(req, 500, b"no")
    index = scripted.base.replace("http://", "http://user:s3cret@") + "/simple/"
    with pytest.raises(FetchError) as info:
        client.project_page(index, "demo")
    assert "s3cret" not in info.value.message and "user" not in info.value.message
    assert [h.get("Authorization", "")[:6] for h in scripted.headers] == ["Basic "] * 2


# == metadata ==================================================================================


@pytest.fixture
def wheel_store(tmp_path: Path) -> Store:
    src = tmp_path / "src"
    src.mkdir()
    store = Store(tmp_path / "store")
    store.publish(write_wheel(src, "meta-probe", "1.0", requires_dist=("idna>=3",)),
                  origin=Origin.UPLOADED)
    return store


@pytest.fixture
def live_index(wheel_store: Store) -> Iterator[str]:
    server = make_server(local_options(wheel_store.root, threads=2))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        thread.join(timeout=10)


def expected_metadata(store: Store) -> bytes:
    (f,) = store.files()
    return store.metadata_path(f).read_bytes()


def listed(client: SimpleClient, index: str) -> Candidate:
    (c,) = client.project_page(index, "meta-probe") or []
    return c


def test_metadata_from_the_pep658_file(live_index: str, wheel_store: Store,
                                       client: SimpleClient) -> None:
    c = listed(client, live_index)
    assert isinstance(c.core_metadata, str)
    assert client.metadata(c) == expected_metadata(wheel_store)
    wrong = dataclasses.replace(c, core_metadata="0" * 64)
    with pytest.raises(UpstreamError, match="does not match"):
        client.metadata(wrong)


def test_metadata_by_ranges_when_not_advertised(live_index: str, wheel_store: Store,
                                                client: SimpleClient) -> None:
    c = dataclasses.replace(listed(client, live_index), core_metadata=None)
    assert client.metadata(c) == expected_metadata(wheel_store)


def ranged_file(data: bytes, served: list[int], *, honour_ranges: bool = True) -> Handler:
    """A file route that answers Range requests (or ignores them), counting bytes sent."""

    def route(req: BaseHTTPRequestHandler) -> None:
        spec = req.headers.get("Range", "")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", spec)
        if not honour_ranges or m is None:
            served.append(len(data))
            send(req, 200, data, "application/octet-stream")
            return
        first, last = m.groups()
        if first:
            start, end = int(first), min(int(last or len(data) - 1), len(data) - 1)
        else:
            start, end = max(0, len(data) - int(last)), len(data) - 1
        served.append(end - start + 1)
        send(req, 206, data[start:end + 1], "application/octet-stream",
             Content_Range=f"bytes {start}-{end}/{len(data)}")

    return route


def big_wheel() -> tuple[bytes, bytes]:
    """A wheel whose METADATA comes first, followed by much more than one tail's worth of
    incompressible data and a central directory larger than the tail."""
    metadata = b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n\n" + "ü".encode() * 3000
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big-1.0.dist-info/METADATA", metadata)
        zf.writestr("big/blob.bin", random.Random(0).randbytes(500_000))
        for i in range(1500):
            zf.writestr(f"big/pkg/{'m' * 40}_{i}.py", b"")
    return buf.getvalue(), metadata


def test_metadata_by_ranges_reads_a_small_part(scripted: Scripted,
                                               client: SimpleClient) -> None:
    data, metadata = big_wheel()
    assert len(data) > 3 * TAIL_BYTES
    served: list[int] = []
    scripted.routes["/f/big-1.0-py3-none-any.whl"] = ranged_file(data, served)
    c = candidate_from("big-1.0-py3-none-any.whl", scripted.base + "/f/big-1.0-py3-none-any.whl",
                       sha256=None, requires_python=None, yanked=None, source="t")
    assert c is not None
    assert client.metadata(c) == metadata
    assert len(served) >= 3 and sum(served) < len(data) / 2
    assert all(h.get("Accept-Encoding") == "identity" for h in scripted.headers)


def test_metadata_unavailable_when_ranges_are_ignored(scripted: Scripted,
                                                      client: SimpleClient) -> None:
    served: list[int] = []
    data = wheel_bytes("plain", "1.0")
    scripted.routes["/f/plain-1.0-py3-none-any.whl"] = ranged_file(data, served,
                                                                    honour_ranges=False)
    c = candidate_from("plain-1.0-py3-none-any.whl",
                       scripted.base + "/f/plain-1.0-py3-none-any.whl", sha256=None,
                       requires_python=None, yanked=None, source="t")
    assert c is not None
    with pytest.raises(MetadataUnavailable, match="does not answer range requests"):
        client.metadata(c)
    # an advertised metadata file that is missing falls back to ranges, then gives up
    with pytest.raises(MetadataUnavailable):
        client.metadata(dataclasses.replace(c, core_metadata=True))
    assert scripted.hits[-2:] == ["/f/plain-1.0-py3-none-any.whl.metadata",
                                  "/f/plain-1.0-py3-none-any.whl"]


def test_metadata_of_sdists_is_unavailable(client: SimpleClient) -> None:
    c = candidate_from("demo-1.0.tar.gz", "https://i.example/demo-1.0.tar.gz", sha256=None,
                       requires_python=None, yanked=None, source="t")
    assert c is not None
    with pytest.raises(MetadataUnavailable):
        client.metadata(c)


def test_metadata_of_find_links_files_is_read_locally(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, "local-probe", "2.0")
    upstream = Upstream(index_urls=[], find_links=[str(tmp_path)])
    (c,) = upstream.candidates("local-probe")
    assert c.url.startswith("file:")
    assert upstream.metadata(c).startswith(b"Metadata-Version: 2.1\nName: local-probe\n")
    assert upstream.download(c, tmp_path / "copy.whl") == hashlib.sha256(
        wheel.read_bytes()).hexdigest()


def test_zip64_archives(monkeypatch: pytest.MonkeyPatch) -> None:
    # zipfile writes zip64 records once its limits are passed; lowered, small archives get them
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 64)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.txt", b"a" * 100)
        zf.writestr("z-1.0.dist-info/METADATA", b"Name: z\n" * 20)
        zf.writestr("b.txt", b"b" * 100)
    data = buf.getvalue()
    assert b"PK\x06\x06" in data
    got = read_member(data[-200:], len(data), lambda start, n: data[start:start + n],
                      lambda names: "z-1.0.dist-info/METADATA", limit=1 << 20)
    assert got == b"Name: z\n" * 20


# == downloads =================================================================================


def test_downloads_are_checked(scripted: Scripted, client: SimpleClient,
                               tmp_path: Path) -> None:
    data = wheel_bytes("dl", "1.0")
    scripted.routes["/f/dl.whl"] = ranged_file(data, [])
    digest = hashlib.sha256(data).hexdigest()
    assert client.download(scripted.base + "/f/dl.whl", tmp_path / "a",
                           expected_sha256=digest) == digest
    assert (tmp_path / "a").read_bytes() == data
    with pytest.raises(UpstreamError, match="but the index lists"):
        client.download(scripted.base + "/f/dl.whl", tmp_path / "b", expected_sha256=SHA)
    with pytest.raises(FetchError) as info:
        client.download(scripted.base + "/f/missing.whl", tmp_path / "c")
    assert info.value.status == 404


def test_a_status_line_trickled_forever_ends_at_the_deadline() -> None:
    """A socket timeout bounds each read; the deadline bounds the request (issue 9)."""
    from tests.hostile_upstream import HostileUpstream

    upstream = HostileUpstream()
    client = SimpleClient("tests", deadline=2.0, retries=0)
    try:
        started = time.monotonic()
        with pytest.raises(FetchError, match="did not answer within 2 s"):
            client.project_page(upstream.url, "trickle-x")
        assert time.monotonic() - started < 5
    finally:
        client.close()
        upstream.close()
