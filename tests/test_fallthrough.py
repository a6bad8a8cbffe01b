"""Tests of the upstream fall-through (``ServerOptions(upstream_url=...)``) and of its
dependency-confusion policy: names the store hosts are answered from the store alone.

Most tests use a fake upstream on 127.0.0.1 that behaves like the mirror this project sees
(PEP 503 HTML only, whatever the Accept header, no PEP 658); the tests marked ``network`` use
PyPI itself. Real pip, uv and pip-compile run in the tests marked ``slow``.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import local_options
from tests.distributions import write_wheel as make_wheel
from tests.test_server import Anchors
from tests.test_upload import READ_TOKEN, TOKEN, basic, client_env, make_sdist
from wheelhouse.errors import UsageError
from wheelhouse.options import ServerOptions
from wheelhouse.server.app import create_app
from wheelhouse.server.fallthrough import UpstreamPages
from wheelhouse.server.serving import make_server
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

JSON = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = f"{JSON}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


# -- a fake upstream ---------------------------------------------------------------------------


class FakeUpstream:
    """An HTML-only simple index with files, counting what it is asked."""

    def __init__(self, files: dict[str, list[Path]]) -> None:
        self.files = files
        self.hits: list[str] = []
        self.status = 200
        self.delay = 0.0
        self.pages: dict[str, str] = {}  # project -> a hand-written page body
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.handle(self, body=True)

            def do_HEAD(self) -> None:
                upstream.handle(self, body=False)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/simple/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def page_hits(self, project: str | None = None) -> int:
        with self._lock:
            return sum(1 for h in self.hits if h.startswith("/simple/")
                       and (project is None or h == f"/simple/{project}/"))

    def handle(self, req: BaseHTTPRequestHandler, *, body: bool) -> None:
        with self._lock:
            self.hits.append(req.path)
        time.sleep(self.delay)
        if self.status != 200:
            self.send(req, self.status, b"upstream trouble", "text/plain", body)
        elif req.path.startswith("/simple/"):
            project = req.path[len("/simple/"):].rstrip("/")
            if project in self.pages:
                self.send(req, 200, self.pages[project].encode(), "text/html", body)
            elif project in self.files:
                self.send(req, 200, self.project_page(project), "text/html", body)
            else:
                self.send(req, 404, b"", "text/plain", body)
        elif req.path.startswith("/packages/"):
            name = req.path[len("/packages/"):]
            found = [p for ps in self.files.values() for p in ps if p.name == name]
            if found:
                self.send(req, 200, found[0].read_bytes(), "application/octet-stream", body)
            else:
                self.send(req, 404, b"", "text/plain", body)
        else:
            self.send(req, 404, b"", "text/plain", body)

    def project_page(self, project: str) -> bytes:
        links = []
        for path in self.files[project]:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            # relative, as many upstreams write them: we must resolve them to absolute URLs
            links.append(f'<a href="../../packages/{path.name}#sha256={digest}" '
                         f'data-requires-python="&gt;=3.8">{path.name}</a><br/>')
        return (f"<!DOCTYPE html><html><body><h1>Links for {project}</h1>"
                + "".join(links) + "</body></html>").encode()

    @staticmethod
    def send(req: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str,
             body: bool) -> None:
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if body:
            req.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream_files(tmp_path: Path) -> dict[str, list[Path]]:
    up = tmp_path / "upstream-files"
    up.mkdir()
    return {
        # only upstream
        "wh-dep": [make_wheel(up, "wh-dep", "1.0", module_source="WHERE = 'upstream'\n"),
                   make_sdist(up, "wh-dep", "1.0")],
        # hosted by us too: upstream offers a higher version, as an attacker would
        "wh-hosted": [make_wheel(up, "wh-hosted", "9.9",
                                 module_source="WHERE = 'upstream: confused!'\n")],
    }


@pytest.fixture
def upstream(upstream_files: dict[str, list[Path]]) -> Iterator[FakeUpstream]:
    fake = FakeUpstream(upstream_files)
    yield fake
    fake.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Our store: hosts wh-hosted 1.0, which depends on wh-dep (upstream only)."""
    src = tmp_path / "ours"
    src.mkdir()
    store = Store(tmp_path / "store")
    store.publish(make_wheel(src, "wh-hosted", "1.0", requires_dist=("wh-dep==1.0",),
                             module_source="WHERE = 'store'\n"), origin=Origin.BUILT)
    return tmp_path / "store"


@pytest.fixture(params=[True, False], ids=["hot", "flask"])
def client(request: pytest.FixtureRequest, root: Path, upstream: FakeUpstream) -> FlaskClient:
    options = ServerOptions(store=root, upstream_url=upstream.url, hot_path=request.param)
    return create_app(options).test_client()


def anchors(body: bytes) -> list[tuple[dict[str, str | None], str]]:
    parser = Anchors()
    parser.feed(body.decode())
    return parser.anchors


# == off by default =============================================================================


def test_off_by_default_unknown_names_are_404(root: Path, upstream: FakeUpstream) -> None:
    client = create_app(ServerOptions(store=root)).test_client()
    assert client.get("/simple/wh-dep/").status_code == 404
    assert upstream.hits == []
    assert client.get("/health").get_json()["fall_through"] is False


# == names we do not host =======================================================================


def test_unhosted_project_falls_through(client: FlaskClient, upstream: FakeUpstream,
                                        upstream_files: dict[str, list[Path]]) -> None:
    resp = client.get("/simple/wh-dep/", headers={"Accept": "text/html"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.headers["Vary"] == "Accept" and resp.headers["ETag"]
    links = anchors(resp.data)
    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in upstream_files["wh-dep"]}
    assert {text for _, text in links} == set(expected)
    base = upstream.url.removesuffix("simple/")
    for attrs, text in links:
        # absolute links to the upstream's own files, with upstream's hash
        assert attrs["href"] == f"{base}packages/{text}#sha256={expected[text]}"
        assert attrs["data-requires-python"] == ">=3.8"
        # no PEP 658 promise: we do not have the bytes
        assert "data-core-metadata" not in attrs and "data-dist-info-metadata" not in attrs
    assert b'content="1.0"' in resp.data


def test_unhosted_project_as_json(client: FlaskClient,
                                  upstream_files: dict[str, list[Path]]) -> None:
    resp = client.get("/simple/wh-dep/", headers={"Accept": PIP_ACCEPT})
    assert resp.headers["Content-Type"] == JSON
    page = resp.get_json(force=True)
    assert page["meta"]["api-version"] == "1.0"
    assert page["name"] == "wh-dep"
    files = {f["filename"]: f for f in page["files"]}
    assert set(files) == {p.name for p in upstream_files["wh-dep"]}
    for f in files.values():
        assert f["url"].startswith("http://127.0.0.1:") and "#" not in f["url"]
        assert len(f["hashes"]["sha256"]) == 64
        assert f["yanked"] is False
        assert "core-metadata" not in f and "dist-info-metadata" not in f


def test_unknown_on_both_is_404_and_remembered(client: FlaskClient,
                                               upstream: FakeUpstream) -> None:
    for _ in range(3):
        resp = client.get("/simple/nowhere-at-all/")
        assert resp.status_code == 404
    assert upstream.page_hits("nowhere-at-all") == 1


@pytest.mark.parametrize("name", ["-bad-", "a..b.", "_", "x" * 3 + "%20y"])
def test_invalid_names_are_not_asked_upstream(client: FlaskClient, upstream: FakeUpstream,
                                              name: str) -> None:
    assert client.get(f"/simple/{name}/").status_code in (301, 404)
    assert upstream.page_hits() == 0


def test_non_normalized_name_redirects_like_hosted_ones(client: FlaskClient) -> None:
    resp = client.get("/simple/WH_Dep/")
    assert resp.status_code == 301
    assert resp.headers["Location"] == "/simple/wh-dep/"
    assert client.get("/simple/wh-dep").status_code == 301


def test_pages_are_cached_for_the_ttl(root: Path, upstream: FakeUpstream) -> None:
    options = ServerOptions(store=root, upstream_url=upstream.url, upstream_ttl=0.3)
    client = create_app(options).test_client()
    first = client.get("/simple/wh-dep/")
    etag = first.headers["ETag"]
    for _ in range(5):
        assert client.get("/simple/wh-dep/").status_code == 200
    assert client.get("/simple/wh-dep/", headers={"If-None-Match": etag}).status_code == 304
    assert upstream.page_hits("wh-dep") == 1
    time.sleep(0.35)
    again = client.get("/simple/wh-dep/")
    assert upstream.page_hits("wh-dep") == 2
    # unchanged upstream: same validators, so clients keep their copy
    assert again.headers["ETag"] == etag
    assert again.headers["Last-Modified"] == first.headers["Last-Modified"]


def test_upstream_failure_is_502_never_404(root: Path, upstream: FakeUpstream) -> None:
    client = create_app(ServerOptions(store=root, upstream_url=upstream.url)).test_client()
    upstream.status = 500
    resp = client.get("/simple/wh-dep/")
    assert resp.status_code == 502
    assert "upstream" in resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    upstream.status = 200
    assert client.get("/simple/wh-dep/").status_code == 200  # a failure is not remembered


def test_stale_page_is_served_while_upstream_is_down(root: Path,
                                                     upstream: FakeUpstream) -> None:
    options = ServerOptions(store=root, upstream_url=upstream.url, upstream_ttl=0.1)
    client = create_app(options).test_client()
    good = client.get("/simple/wh-dep/")
    upstream.status = 503
    time.sleep(0.15)
    stale = client.get("/simple/wh-dep/")
    assert stale.status_code == 200 and stale.data == good.data


def test_hostile_links_are_dropped(client: FlaskClient, upstream: FakeUpstream) -> None:
    ok = "a" * 64
    upstream.pages["wh-odd"] = (
        '<a href="javascript:alert(1)/wh_odd-1.0-py3-none-any.whl">x</a>'
        '<a href="file:///etc/wh_odd-1.1-py3-none-any.whl">x</a>'
        '<a href="/packages/other_project-1.0-py3-none-any.whl">x</a>'
        '<a href="/packages/wh_odd-1.0.exe">x</a>'
        f'<a href="/packages/wh_odd-2.0-py3-none-any.whl#sha256={ok}" '
        'data-yanked="a &lt;bad&gt; one, süß">x</a>'
    )
    links = anchors(client.get("/simple/wh-odd/").data)
    assert [text for _, text in links] == ["wh_odd-2.0-py3-none-any.whl"]
    # the page came as text/html without a charset: read as UTF-8, as simple pages are
    assert links[0][0]["data-yanked"] == "a <bad> one, süß"
    page = client.get("/simple/wh-odd/", headers={"Accept": JSON}).get_json(force=True)
    assert page["files"][0]["yanked"] == "a <bad> one, süß"


def test_concurrent_requests_ask_upstream_once(root: Path, upstream: FakeUpstream) -> None:
    app = create_app(ServerOptions(store=root, upstream_url=upstream.url))
    upstream.delay = 0.3
    statuses: list[int] = []

    def get() -> None:
        statuses.append(app.test_client().get("/simple/wh-dep/").status_code)

    threads = [threading.Thread(target=get) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert statuses == [200] * 8
    assert upstream.page_hits("wh-dep") == 1


def test_health_says_fall_through_is_on(client: FlaskClient) -> None:
    assert client.get("/health").get_json()["fall_through"] is True


def test_project_list_shows_hosted_projects_only(client: FlaskClient) -> None:
    assert client.get("/simple/wh-dep/").status_code == 200
    page = client.get("/simple/", headers={"Accept": JSON}).get_json(force=True)
    assert [p["name"] for p in page["projects"]] == ["wh-hosted"]


def test_the_cache_is_bounded() -> None:
    pages = UpstreamPages("http://127.0.0.1:9/simple/", max_entries=3)
    for i in range(10):
        pages._store(f"p{i}", None, time.monotonic() + 60)  # type: ignore[arg-type]
    assert list(pages._entries) == ["p7", "p8", "p9"]


@pytest.mark.parametrize("url", ["ftp://h/simple/", "http:///simple/",
                                 "https://user:secret@h/simple/", "https://h/simple/?x=1"])
def test_unusable_upstream_urls(root: Path, url: str) -> None:
    with pytest.raises(UsageError) as info:
        create_app(ServerOptions(store=root, upstream_url=url))
    assert "secret" not in info.value.message


def test_fall_through_needs_the_read_token_too(root: Path, upstream: FakeUpstream) -> None:
    client = create_app(ServerOptions(store=root, upstream_url=upstream.url, upload_token=TOKEN,
                                      read_token=READ_TOKEN)).test_client()
    assert client.get("/simple/wh-dep/").status_code == 401
    assert upstream.hits == []
    assert client.get("/simple/wh-dep/", headers=basic(READ_TOKEN)).status_code == 200


# == names we host: dependency confusion =======================================================


def test_hosted_project_is_served_from_the_store_only(client: FlaskClient,
                                                      upstream: FakeUpstream) -> None:
    for accept in ("text/html", JSON):
        resp = client.get("/simple/wh-hosted/", headers={"Accept": accept})
        assert resp.status_code == 200
        assert b"9.9" not in resp.data
        assert b"wh_hosted-1.0-py3-none-any.whl" in resp.data
    # upstream is not even asked about a name we host
    assert upstream.page_hits("wh-hosted") == 0


def test_a_name_published_later_stops_falling_through(client: FlaskClient, root: Path,
                                                      tmp_path: Path) -> None:
    assert b"packages/wh_dep-1.0" in client.get("/simple/wh-dep/").data
    own = tmp_path / "own"
    own.mkdir()
    Store(root).publish(make_wheel(own, "wh-dep", "0.5"), origin=Origin.UPLOADED)
    deadline = time.monotonic() + 2
    while b"packages/wh_dep-1.0" in client.get("/simple/wh-dep/").data:
        assert time.monotonic() < deadline, "the store's own file did not take over"
        time.sleep(0.05)
    links = anchors(client.get("/simple/wh-dep/").data)
    assert [text for _, text in links] == ["wh_dep-0.5-py3-none-any.whl"]


# == real clients ===============================================================================


class Live:
    def __init__(self, base: str) -> None:
        self.base = base
        self.index = f"{base}/simple/"


@pytest.fixture
def live(root: Path, upstream: FakeUpstream) -> Iterator[Live]:
    server = make_server(local_options(root, threads=4, upstream_url=upstream.url))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)


def venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def pip(python: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir",
         "--no-input", *args],
        capture_output=True, text=True, env=client_env(tmp), timeout=300,
    )


def installed_where(python: Path, tmp: Path, module: str) -> str:
    return subprocess.run([str(python), "-c", f"import {module}; print({module}.WHERE)"],
                          check=True, capture_output=True, text=True,
                          env=client_env(tmp)).stdout.strip()


@pytest.mark.slow
def test_pip_installs_through_the_fall_through(live: Live, upstream: FakeUpstream,
                                               tmp_path: Path) -> None:
    python = venv(tmp_path / "venv")
    report = tmp_path / "report.json"
    result = pip(python, tmp_path, "--index-url", live.index, "--report", str(report),
                 "--only-binary", ":all:", "wh-hosted")
    assert result.returncode == 0, result.stdout + result.stderr
    urls = {i["metadata"]["name"]: i["download_info"]["url"]
            for i in json.loads(report.read_text())["install"]}
    upstream_base = upstream.url.removesuffix("simple/")
    assert urls["wh-hosted"] == f"{live.base}/files/wh-hosted/wh_hosted-1.0-py3-none-any.whl"
    assert urls["wh-dep"] == f"{upstream_base}packages/wh_dep-1.0-py3-none-any.whl"
    # pip asked only us for pages; upstream served the file our page linked to
    assert upstream.page_hits() == 1  # our server's own fetch of wh-dep
    assert "/packages/wh_dep-1.0-py3-none-any.whl" in upstream.hits
    # the store's wh-hosted 1.0, not upstream's 9.9
    assert installed_where(python, tmp_path, "wh_hosted") == "store"


@pytest.mark.slow
def test_uv_takes_hosted_names_from_the_store_only(live: Live, tmp_path: Path) -> None:
    uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or "uv"
    env = client_env(tmp_path)
    made = subprocess.run([uv, "venv", "--python", sys.executable, str(tmp_path / "venv")],
                          capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stderr
    python = tmp_path / "venv" / "bin" / "python"
    result = subprocess.run(
        [uv, "pip", "install", "--python", str(python), "--index-url", live.index,
         "wh-hosted", "wh-dep"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_where(python, tmp_path, "wh_hosted") == "store"
    assert installed_where(python, tmp_path, "wh_dep") == "upstream"
    # asking for the upstream-only version of a hosted name fails: it is not ours
    bad = subprocess.run(
        [uv, "pip", "install", "--python", str(python), "--index-url", live.index,
         "wh-hosted==9.9"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert bad.returncode != 0


def _pip_compile(tmp: Path, index: str, *requirements: str) -> Path:
    req_in = tmp / "requirements.in"
    req_in.write_text("".join(r + "\n" for r in requirements))
    lock = tmp / "lock.txt"
    pip_compile = Path(sys.executable).parent / "pip-compile"
    result = subprocess.run(
        [str(pip_compile), "--generate-hashes", "--index-url", index, "--no-emit-index-url",
         "--cache-dir", str(tmp / "pip-tools-cache"), "--output-file", str(lock), str(req_in)],
        capture_output=True, text=True, env=client_env(tmp), timeout=600, cwd=tmp,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return lock


@pytest.mark.slow
def test_pip_compile_hashes_and_require_hashes_install(live: Live, tmp_path: Path) -> None:
    lock = _pip_compile(tmp_path, live.index, "wh-hosted")
    text = lock.read_text()
    assert re.search(r"^wh-hosted==1\.0 \\$", text, re.M), text
    assert re.search(r"^wh-dep==1\.0 \\$", text, re.M), text
    assert text.count("--hash=sha256:") >= 3  # wh-dep has a wheel and an sdist
    python = venv(tmp_path / "venv")
    result = pip(python, tmp_path, "--index-url", live.index, "--require-hashes",
                 "--only-binary", ":all:", "-r", str(lock))
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_where(python, tmp_path, "wh_dep") == "upstream"


# == PyPI itself ================================================================================

PYPI = "https://pypi.org/simple/"


@pytest.fixture
def pypi_root(tmp_path: Path) -> Path:
    """A store hosting one project that depends on a PyPI project we do not host."""
    src = tmp_path / "pypi-src"
    src.mkdir()
    store = Store(tmp_path / "pypi-store")
    store.publish(make_wheel(src, "wh-local-probe", "1.0", requires_dist=("six==1.16.0",),
                             module_source="WHERE = 'store'\n"), origin=Origin.BUILT)
    return store.root


@pytest.fixture
def pypi_live(pypi_root: Path) -> Iterator[Live]:
    server = make_server(local_options(pypi_root, threads=4, upstream_url=PYPI))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _skip_without_pypi() -> None:
    import requests

    try:
        requests.get(PYPI + "six/", timeout=20).raise_for_status()
    except requests.RequestException as e:
        pytest.skip(f"PyPI is not reachable: {e}")


@pytest.mark.network
@pytest.mark.slow
def test_pip_installs_an_unhosted_pypi_project_through_us(pypi_live: Live,
                                                          tmp_path: Path) -> None:
    _skip_without_pypi()
    python = venv(tmp_path / "venv")
    report = tmp_path / "report.json"
    result = pip(python, tmp_path, "--index-url", pypi_live.index, "--report", str(report),
                 "six==1.16.0")
    assert result.returncode == 0, result.stdout + result.stderr
    (item,) = json.loads(report.read_text())["install"]
    info = item["download_info"]
    # our page linked the upstream file with upstream's hash, and pip checked it
    assert info["url"].startswith("https://files.pythonhosted.org/")
    assert info["url"].endswith("/six-1.16.0-py2.py3-none-any.whl")
    assert info["archive_info"]["hashes"]["sha256"] == (
        "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254")
    page = subprocess.run(
        [sys.executable, "-c", "import urllib.request,sys;"
         f"print(urllib.request.urlopen('{pypi_live.index}six/').read().decode())"],
        capture_output=True, text=True, check=True, env=client_env(tmp_path),
    ).stdout
    assert "six-1.16.0-py2.py3-none-any.whl" in html.unescape(page)


@pytest.mark.network
@pytest.mark.slow
def test_without_fall_through_pypi_projects_are_404(pypi_root: Path, tmp_path: Path) -> None:
    _skip_without_pypi()
    client = create_app(ServerOptions(store=pypi_root)).test_client()
    assert client.get("/simple/six/").status_code == 404
    server = make_server(local_options(pypi_root, threads=2))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        python = venv(tmp_path / "venv")
        result = pip(python, tmp_path, "--index-url",
                     f"http://127.0.0.1:{server.port}/simple/", "six==1.16.0")
        assert result.returncode != 0
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.mark.network
@pytest.mark.slow
def test_pip_compile_against_us_with_pypi_behind(pypi_live: Live, tmp_path: Path) -> None:
    _skip_without_pypi()
    lock = _pip_compile(tmp_path, pypi_live.index, "wh-local-probe")
    text = lock.read_text()
    assert re.search(r"^wh-local-probe==1\.0 \\$", text, re.M), text
    assert re.search(r"^six==1\.16\.0 \\$", text, re.M), text
    assert ("--hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
            in text)
    python = venv(tmp_path / "venv")
    result = pip(python, tmp_path, "--index-url", pypi_live.index, "--require-hashes",
                 "--only-binary", ":all:", "-r", str(lock))
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_where(python, tmp_path, "wh_local_probe") == "store"
