"""Tests of the static export (wheelhouse.export): the tree it writes equals what the server
serves, replacing an export is atomic and safe, and real nginx with ``server/nginx.conf``
serves the tree to real pip and uv (those tests are ``slow`` and need the ``nginx`` binary).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tests.conftest import wheelhouse
from tests.distributions import write_sdist, write_wheel
from tests.nginx import executable, start_nginx
from wheelhouse.errors import StoreError, UsageError
from wheelhouse.export import MARKER, export
from wheelhouse.options import ServerOptions
from wheelhouse.server.app import create_app
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

REPO = Path(__file__).resolve().parent.parent
NGINX_CONF = REPO / "server" / "nginx.conf"

JSON = "application/vnd.pypi.simple.v1+json"
V1_HTML = "application/vnd.pypi.simple.v1+html"
PIP_ACCEPT = f"{JSON}, {V1_HTML}; q=0.1, text/html; q=0.01"
UV_ACCEPT = f"{JSON}, {V1_HTML};q=0.2, text/html;q=0.01"

ALPHA, BETA = "whx-alpha", "whx-beta"
LOCAL_WHEEL = "whx_alpha-1.1+local.1-py3-none-any.whl"
BETA_WHEEL = "whx_beta-1.0-py3-none-any.whl"


# -- distributions --------------------------------------------------------------------------


def make_store(root: Path) -> Path:
    """alpha: 0.9 (yanked), 1.0, 1.1+local.1 (a "+" in the filename) and an sdist;
    beta 1.0 depends on alpha and needs Python >= 3.8."""
    src = root.parent / f"{root.name}-src"
    src.mkdir()
    store = Store(root)
    for path in [
        write_wheel(src, ALPHA, "0.9"),
        write_wheel(src, ALPHA, "1.0"),
        write_wheel(src, ALPHA, "1.1+local.1"),
        write_sdist(src, ALPHA, "1.0"),
        write_wheel(src, BETA, "1.0", requires_dist=[f"{ALPHA}>=1.0"], requires_python=">=3.8"),
    ]:
        store.publish(path, origin=Origin.UPLOADED)
    store.set_yanked("whx_alpha-0.9-py3-none-any.whl", "broken <on purpose>")
    return root


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def anchors(page: bytes) -> list[dict[str, str | None]]:
    parser = _Anchors()
    parser.feed(page.decode())
    return parser.anchors


def tree_path(out: Path, page_url: str, href: str) -> Path:
    """Where a relative href on the page at ``page_url`` lands in the exported tree."""
    path = unquote(urlsplit(urljoin(page_url, href)).path)
    return out / path.lstrip("/")


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return make_store(tmp_path / "store")


@pytest.fixture
def exported(store_root: Path, tmp_path: Path) -> Path:
    out = tmp_path / "web" / "export"
    export(store_root, out)
    return out


# -- the tree -------------------------------------------------------------------------------


def test_tree_layout(store_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = export(store_root, out)
    assert (summary.projects, summary.files) == (2, 5)
    assert summary.linked + summary.reused + summary.copied == 5
    assert summary.out == out
    for rel in ["simple/index.html", "simple/index.json", "links/index.html", MARKER,
                f"simple/{ALPHA}/index.html", f"simple/{ALPHA}/index.json",
                f"simple/{BETA}/index.html", f"simple/{BETA}/index.json",
                f"files/{ALPHA}/{LOCAL_WHEEL}", f"files/{ALPHA}/{LOCAL_WHEEL}.metadata",
                f"files/{ALPHA}/whx_alpha-1.0.tar.gz", f"files/{BETA}/{BETA_WHEEL}.metadata"]:
        assert (out / rel).is_file(), rel
    # sdists never get a .metadata (PEP 658: only wheels' metadata is fixed)
    assert not (out / f"files/{ALPHA}/whx_alpha-1.0.tar.gz.metadata").exists()
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == 5
    assert marker["generation"] == Store(store_root, readonly=True).generation()
    # nothing is left next to OUT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "store", "store-src"]


def test_pages_equal_what_the_server_serves(store_root: Path, exported: Path) -> None:
    client = create_app(ServerOptions(store=store_root)).test_client()
    cases = [
        ("/simple/", "text/html", "simple/index.html"),
        ("/simple/", JSON, "simple/index.json"),
        (f"/simple/{ALPHA}/", "text/html", f"simple/{ALPHA}/index.html"),
        (f"/simple/{ALPHA}/", PIP_ACCEPT, f"simple/{ALPHA}/index.json"),
        (f"/simple/{BETA}/", UV_ACCEPT, f"simple/{BETA}/index.json"),
        ("/links/", "text/html", "links/index.html"),
    ]
    for url, accept, rel in cases:
        resp = client.get(url, headers={"Accept": accept})
        assert resp.status_code == 200, url
        assert resp.data == (exported / rel).read_bytes(), (url, accept)


def test_files_and_metadata_equal_the_store(store_root: Path, exported: Path) -> None:
    store = Store(store_root, readonly=True)
    for f in store.files():
        copy = exported / "files" / f.project / f.filename
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == f.sha256
        if f.metadata_sha256:
            meta = (exported / "files" / f.project / (f.filename + ".metadata")).read_bytes()
            assert hashlib.sha256(meta).hexdigest() == f.metadata_sha256
            assert meta == store.metadata_path(f).read_bytes()


def test_every_relative_url_resolves_in_the_tree(exported: Path) -> None:
    root_page = (exported / "simple/index.html").read_bytes()
    projects = [a["href"] for a in anchors(root_page)]
    assert projects == [f"{ALPHA}/", f"{BETA}/"]
    for href in projects:
        assert href is not None
        page_url = urljoin("http://index.example/simple/", href)
        page_dir = tree_path(exported, "http://index.example/simple/", href)
        for a in anchors((page_dir / "index.html").read_bytes()):
            assert a["href"] is not None
            target = tree_path(exported, page_url, a["href"])
            assert target.is_file(), a["href"]
            fragment = urlsplit(a["href"]).fragment
            assert fragment == "sha256=" + hashlib.sha256(target.read_bytes()).hexdigest()
            core = a.get("data-core-metadata")
            if core is not None:
                meta = target.with_name(target.name + ".metadata").read_bytes()
                assert core == "sha256=" + hashlib.sha256(meta).hexdigest()
        data = json.loads((page_dir / "index.json").read_bytes())
        for entry in data["files"]:
            target = tree_path(exported, page_url, entry["url"])
            assert target.stat().st_size == entry["size"]
    for a in anchors((exported / "links/index.html").read_bytes()):
        assert a["href"] is not None
        assert tree_path(exported, "http://index.example/links/", a["href"]).is_file()


def test_local_version_href_is_percent_encoded(exported: Path) -> None:
    page = (exported / f"simple/{ALPHA}/index.html").read_text()
    assert "whx_alpha-1.1%2Blocal.1-py3-none-any.whl" in page
    assert (exported / "files" / ALPHA / LOCAL_WHEEL).is_file()


def test_modes_are_readable_by_a_web_server(exported: Path) -> None:
    for path in [exported, exported / "simple", exported / "files" / ALPHA]:
        assert path.stat().st_mode & 0o777 == 0o755, path
    for path in [exported / "simple/index.json", exported / "files" / ALPHA / LOCAL_WHEEL]:
        assert path.stat().st_mode & 0o444 == 0o444, path


def test_private_store_files_are_copied_public_ones_linked(
    store_root: Path, tmp_path: Path
) -> None:
    store = Store(store_root, readonly=True)
    public = store.get(BETA_WHEEL)
    assert public is not None
    # A file others may read can be shared with the web server; the rest are copied, since
    # a hard link would carry the store's private mode into the export.
    store.file_path(public).chmod(0o644)
    for f in store.files():
        if f.filename != BETA_WHEEL:
            store.file_path(f).chmod(0o600)
    out = tmp_path / "out"
    summary = export(store_root, out)
    assert (summary.linked, summary.copied) == (1, 4)
    assert (out / "files" / BETA / BETA_WHEEL).stat().st_ino == store.file_path(
        public).stat().st_ino
    private = store.files(ALPHA)[0]
    copy = out / "files" / ALPHA / private.filename
    assert copy.stat().st_ino != store.file_path(private).stat().st_ino
    # a copy keeps the store file's mtime: nginx's ETag (mtime-size) stays the same
    assert copy.stat().st_mtime_ns == store.file_path(private).stat().st_mtime_ns
    assert export(store_root, tmp_path / "copies", link=False).linked == 0


def test_reexport_replaces_the_tree_and_keeps_what_did_not_change(
    store_root: Path, exported: Path, tmp_path: Path
) -> None:
    beta_page = exported / f"simple/{BETA}/index.json"
    alpha_page = exported / f"simple/{ALPHA}/index.json"
    before_beta, before_alpha = beta_page.stat(), alpha_page.stat()
    src = tmp_path / "more"
    src.mkdir()
    Store(store_root).publish(write_wheel(src, ALPHA, "2.0"), origin=Origin.UPLOADED)

    summary = export(store_root, exported)

    assert summary.files == 6
    # Store files are world-readable, so every file (the new one too) is linked from the
    # store or taken over from the previous export; nothing is copied again.
    assert summary.copied == 0 and summary.reused + summary.linked == 6
    assert (exported / f"files/{ALPHA}/whx_alpha-2.0-py3-none-any.whl").is_file()
    assert "whx_alpha-2.0" in alpha_page.read_text()
    # an unchanged page keeps its inode and mtime, so nginx's ETag still matches; a changed
    # page is new
    assert beta_page.stat().st_ino == before_beta.st_ino
    assert beta_page.stat().st_mtime_ns == before_beta.st_mtime_ns
    assert alpha_page.stat().st_ino != before_alpha.st_ino
    assert sorted(p.name for p in exported.parent.iterdir()) == ["export"]


def test_replacing_never_leaves_out_missing(store_root: Path, exported: Path) -> None:
    """While an export is being replaced, a reader always finds a complete tree."""
    import threading

    seen_missing: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for rel in ("simple/index.html", f"simple/{ALPHA}/index.json", MARKER):
                if not (exported / rel).is_file():
                    seen_missing.append(rel)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(5):
            export(store_root, exported)
    finally:
        done.set()
        watcher.join()
    assert seen_missing == []


def test_refuses_to_replace_a_directory_that_is_not_an_export(
    store_root: Path, tmp_path: Path
) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not a wheelhouse export"):
        export(store_root, precious)
    assert (precious / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "store", "store-src"]

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        export(store_root, a_file)


def test_an_empty_directory_is_fine(store_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    export(store_root, out)
    assert (out / MARKER).is_file()


def test_missing_store_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no wheelhouse store"):
        export(tmp_path / "nothing", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_missing_from_the_store_fails_and_keeps_the_old_export(
    store_root: Path, exported: Path
) -> None:
    store = Store(store_root, readonly=True)
    victim = store.get(BETA_WHEEL)
    assert victim is not None
    store.file_path(victim).unlink()
    with pytest.raises(StoreError, match="missing"):
        export(store_root, exported)
    # the previous export is untouched and nothing half-written is left beside it
    assert (exported / "files" / BETA / BETA_WHEEL).is_file()
    assert sorted(p.name for p in exported.parent.iterdir()) == ["export"]


def test_cli_export(store_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-out"
    result = wheelhouse("export", "--store", str(store_root), str(out))
    assert result.returncode == 0, result.stderr
    assert "Exported 5 files in 2 projects" in result.stdout
    assert (out / "simple/index.html").is_file()

    refused = wheelhouse("export", "--store", str(store_root), str(tmp_path))
    assert refused.returncode == 2
    assert "refusing to replace" in refused.stderr
    assert "hint:" in refused.stderr


# == nginx with server/nginx.conf ==============================================================


@dataclass
class Nginx:
    base: str
    prefix: Path

    def access_log(self) -> str:
        return (self.prefix / "logs" / "access.log").read_text()


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    if executable() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install -y nginx)")
    prefix = tmp_path_factory.mktemp("nginx")
    store_root = make_store(prefix / "store")
    export(store_root, prefix / "export")
    proc, base = start_nginx(prefix, NGINX_CONF.read_text())
    try:
        yield Nginx(base=base, prefix=prefix)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def fetch(url: str, method: str = "GET", **headers: str) -> tuple[int, Message, bytes]:
    """Status, headers (case-insensitive: granian sends them in lower case) and body."""
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("accept", "content_type", "rel"),
    [
        (PIP_ACCEPT, JSON, "index.json"),
        (UV_ACCEPT, JSON, "index.json"),
        (JSON, JSON, "index.json"),
        ("application/vnd.pypi.simple.latest+json", JSON, "index.json"),
        ("text/html", "text/html; charset=utf-8", "index.html"),
        (V1_HTML, V1_HTML, "index.html"),
        ("*/*", "text/html; charset=utf-8", "index.html"),
        (f"{JSON};q=0, */*", "text/html; charset=utf-8", "index.html"),
        ("text/html, " + JSON, "text/html; charset=utf-8", "index.html"),
    ],
)
def test_nginx_negotiates_like_the_server(
    nginx: Nginx, accept: str, content_type: str, rel: str
) -> None:
    for page in ("", f"{ALPHA}/"):
        status, headers, body = fetch(f"{nginx.base}/simple/{page}", Accept=accept)
        assert status == 200
        assert headers["Content-Type"] == content_type
        assert headers["Vary"] == "Accept"
        assert headers.get("Content-Encoding") is None
        assert body == (nginx.prefix / "export" / "simple" / page / rel).read_bytes()


@pytest.mark.slow
def test_nginx_without_accept_and_with_unsupported_types(nginx: Nginx) -> None:
    req = urllib.request.Request(f"{nginx.base}/simple/{ALPHA}/")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    status, headers, _ = fetch(f"{nginx.base}/simple/{ALPHA}/", Accept="application/json")
    assert status == 406
    assert headers["Vary"] == "Accept"


@pytest.mark.slow
def test_nginx_404_and_redirects(nginx: Nginx) -> None:
    assert fetch(f"{nginx.base}/simple/no-such-project/", Accept=PIP_ACCEPT)[0] == 404
    assert fetch(f"{nginx.base}/files/{ALPHA}/nothing.whl")[0] == 404
    assert fetch(f"{nginx.base}/{MARKER}")[0] == 404
    opener = urllib.request.build_opener(_NoRedirect)
    for path, location in [("/simple", "/simple/"), (f"/simple/{ALPHA}", f"/simple/{ALPHA}/"),
                           ("/links", "/links/")]:
        with pytest.raises(urllib.error.HTTPError) as info:
            opener.open(f"{nginx.base}{path}", timeout=10)
        assert info.value.code == 301
        assert info.value.headers["Location"] == location


@pytest.mark.slow
def test_nginx_files_metadata_and_hashes(nginx: Nginx) -> None:
    page_url = f"{nginx.base}/simple/{ALPHA}/"
    status, headers, body = fetch(page_url, Accept=PIP_ACCEPT)
    assert status == 200
    files = json.loads(body)["files"]
    assert {f["filename"] for f in files} >= {LOCAL_WHEEL, "whx_alpha-1.0.tar.gz"}
    for entry in files:
        url = urljoin(page_url, entry["url"])
        status, headers, data = fetch(url)
        assert status == 200
        assert hashlib.sha256(data).hexdigest() == entry["hashes"]["sha256"]
        assert int(headers["Content-Length"]) == entry["size"]
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers.get("Content-Encoding") is None
        assert "immutable" in headers["Cache-Control"]
        if entry["core-metadata"]:
            status, _, meta = fetch(url + ".metadata")
            assert status == 200
            assert hashlib.sha256(meta).hexdigest() == entry["core-metadata"]["sha256"]
        else:
            assert fetch(url + ".metadata")[0] == 404


@pytest.mark.slow
def test_nginx_head_range_and_revalidation(nginx: Nginx) -> None:
    url = f"{nginx.base}/files/{ALPHA}/whx_alpha-1.1%2Blocal.1-py3-none-any.whl"
    status, headers, body = fetch(url, method="HEAD")
    assert status == 200 and body == b""
    assert headers["Accept-Ranges"] == "bytes"
    size = int(headers["Content-Length"])
    status, headers, body = fetch(url, Range="bytes=0-9")
    assert status == 206
    assert headers["Content-Range"] == f"bytes 0-9/{size}"
    assert len(body) == 10
    for target, accept in [(url, "*/*"), (f"{nginx.base}/simple/{ALPHA}/", PIP_ACCEPT)]:
        status, headers, _ = fetch(target, Accept=accept)
        etag = headers["ETag"]
        assert not etag.startswith("W/")
        assert fetch(target, Accept=accept, **{"If-None-Match": etag})[0] == 304


def _client_env(tmp: Path) -> dict[str, str]:
    """pip and uv with none of this machine's extra sources (see docs: environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               UV_NO_CONFIG="1", UV_CACHE_DIR=str(tmp / "uv-cache"),
               UV_PYTHON_DOWNLOADS="never", NO_PROXY="127.0.0.1,localhost")
    return env


def _assert_installed_from(nginx: Nginx, python: Path, env: dict[str, str]) -> None:
    out = subprocess.run(
        [str(python), "-c", "import whx_alpha, whx_beta; print(whx_alpha.VERSION)"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.strip()
    assert out == "1.1+local.1"
    log = nginx.access_log()
    assert re.search(rf'"GET /files/{BETA}/{BETA_WHEEL} HTTP/1\.1" 200', log), log
    assert re.search(r'"GET /files/whx-alpha/whx_alpha-1\.1(\+|%2B)local\.1-py3-none-any\.whl '
                     r'HTTP/1\.1" 200', log), log


@pytest.mark.slow
@pytest.mark.parametrize("source", ["index", "find-links"])
def test_pip_installs_from_nginx(nginx: Nginx, tmp_path: Path, source: str) -> None:
    env = _client_env(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    where = (["--index-url", f"{nginx.base}/simple/"] if source == "index"
             else ["--no-index", "--find-links", f"{nginx.base}/links/"])
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir",
         "--only-binary", ":all:", "--report", str(report), *where, BETA],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    installed = json.loads(report.read_text())["install"]
    assert {i["metadata"]["name"] for i in installed} == {ALPHA, BETA}
    for item in installed:
        assert item["download_info"]["url"].startswith(f"{nginx.base}/files/")
    _assert_installed_from(nginx, python, env)
    if source == "index":
        # pip resolved the dependency from the PEP 658 file (and checked its hash)
        assert f"{BETA_WHEEL}.metadata HTTP/1.1\" 200" in nginx.access_log()


@pytest.mark.slow
def test_uv_installs_from_nginx(nginx: Nginx, tmp_path: Path) -> None:
    uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (it is in the test extra)")
    env = _client_env(tmp_path)
    venv = tmp_path / "venv"
    made = subprocess.run([uv, "venv", "--python", sys.executable, str(venv)],
                          capture_output=True, text=True, env=env, check=False)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    result = subprocess.run(
        [uv, "pip", "install", "--python", str(python), "--no-cache",
         "--index-url", f"{nginx.base}/simple/", BETA],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_installed_from(nginx, python, env)
