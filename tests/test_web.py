"""Issue 10 acceptance e: the web page at ``/`` shows, for each project and version, which wheel
serves each target and where it came from, links failures to their logs, and serves logs only
from the store's logs directory; in headless Chromium, at a laptop's and a phone's width."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
from flask.testing import FlaskClient

from tests.conftest import local_options, start_server, stop_server
from tests.webstore import (
    ARM,
    BROKEN_LOG,
    BUILT_LOG,
    CAUSE,
    LONG_VERSION,
    MUSL,
    X86,
    make_big_web_store,
    make_web_store,
)
from wheelhouse.server.app import create_app
from wheelhouse.server.matrix import State, build_matrix
from wheelhouse.store.store import Store

#: Where screenshots are kept after the run (CI keeps the folder as an artifact).
ARTIFACTS = Path(os.environ.get("WHEELHOUSE_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parent.parent / "test-artifacts")

# The flags known to work here: no sandbox as root, and nothing that phones home (the machine
# has no network beyond loopback and the package registries).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_web_store(tmp_path_factory.mktemp("web") / "store")


@pytest.fixture
def client(web_store: Path) -> Iterator[FlaskClient]:
    yield create_app(local_options(web_store)).test_client()


class Cells(HTMLParser):
    """The matrix cells of a page: (project, version, target) → state and links."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], dict[str, object]] = {}
        self._project = self._version = ""
        self._cell: dict[str, object] | None = None
        self._href: str | None = None
        self._in_row_head = False
        self._row_version = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("table", "tr") and a.get("data-project"):
            # a project's own matrix names it on the table; the landing matrix, per row
            self._project = a["data-project"] or ""
            self._row_version = a.get("data-version") or ""
        elif tag == "th" and a.get("scope") == "row":
            self._in_row_head = not self._row_version
            self._version = self._row_version
        elif tag == "td" and a.get("data-target"):
            self._cell = {"state": a.get("data-state"), "links": {}}
            key = (self._project, self._version, a["data-target"] or "")
            self.cells[key] = self._cell
        elif tag == "a" and self._cell is not None:
            self._href = a.get("href") or ""

    def handle_data(self, data: str) -> None:
        if self._in_row_head:
            self._version += data.strip()
        elif self._cell is not None and data.strip() and self._href:
            links = self._cell["links"]
            assert isinstance(links, dict)
            links[data.strip()] = self._href

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_row_head = False
        elif tag == "td":
            self._cell = None
        elif tag == "a":
            self._href = None


def cells_of(html: str) -> dict[tuple[str, str, str], dict[str, object]]:
    parser = Cells()
    parser.feed(html)
    return parser.cells


def test_the_matrix_says_where_each_wheel_came_from(web_store: Path) -> None:
    from wheelhouse.ledger import Ledger

    matrix = build_matrix(Store(web_store, readonly=True).files(),
                          Ledger(web_store, readonly=True).failures())
    assert matrix.targets == (ARM, X86, MUSL)
    markupsafe = matrix.project("MarkupSafe")
    assert markupsafe is not None and [v.version for v in markupsafe.versions] == ["2.1.5",
                                                                                  "2.1.3"]
    assert [c.state for c in markupsafe.versions[0].cells] == [
        State.BUILT, State.UPSTREAM, State.UPSTREAM]
    assert [c.state for c in markupsafe.versions[1].cells] == [
        State.NONE, State.UPSTREAM, State.NONE]
    demo = matrix.project("whdemo-ext")
    assert demo is not None
    assert [c.state for c in demo.versions[0].cells] == [State.NONE, State.BUILT, State.FAILED]
    assert [p.name for p in matrix.search(" Markup_Safe ")] == ["markupsafe"]
    assert [p.name for p in matrix.search("markup safe")] == ["markupsafe"]


def test_the_page_links_files_logs_and_provenance(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "script-src" not in page.headers["Content-Security-Policy"]
    cells = cells_of(page.get_data(as_text=True))
    failed = cells[("whdemo-ext", "1.0.0", MUSL)]
    assert failed["state"] == "failed"
    assert failed["links"] == {"failed": "/project/whdemo-ext/#failed-1.0.0-" + MUSL,
                               "log": "/" + BROKEN_LOG}
    built = cells[("markupsafe", "2.1.5", ARM)]
    assert built["state"] == "built"
    links = built["links"]
    assert isinstance(links, dict) and links["log"] == "/" + BUILT_LOG
    assert client.get(links["built"]).status_code == 200
    prov = client.get(links["provenance"]).get_json()
    assert prov["provenance"]["target"] == ARM and prov["origin"] == "built"
    assert cells[("requests", "2.32.3", MUSL)]["state"] == "upstream"
    assert "--index-url http://localhost/simple/" in page.get_data(as_text=True)


def test_a_failure_on_its_project_page(client: FlaskClient) -> None:
    page = client.get("/project/WHDemo_Ext/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="failed-1.0.0-cp311-musllinux_x86_64"' in text
    assert CAUSE in text and "install the Python headers" in text
    assert client.get("/project/nothing-here/").status_code == 404


def test_search_narrows_the_projects(client: FlaskClient) -> None:
    cells = cells_of(client.get("/?q=markup").get_data(as_text=True))
    assert {k[0] for k in cells} == {"markupsafe"}
    assert not cells_of(client.get("/?q=nope").get_data(as_text=True))


def test_logs_are_text_and_only_from_the_logs_directory(client: FlaskClient,
                                                        web_store: Path) -> None:
    log = client.get("/" + BROKEN_LOG)
    assert log.status_code == 200 and log.mimetype == "text/plain"
    assert log.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" in log.get_data(as_text=True), "served as it is, as text"
    (web_store / "logs" / "escape.log").symlink_to(web_store / "catalogue.sqlite3")
    for path in ("/logs/../ledger.sqlite3", "/logs/%2e%2e/ledger.sqlite3",
                 "/logs//etc/passwd", "/logs/escape.log", "/logs/whdemo-ext",
                 "/logs/nothing.log"):
        assert client.get(path, follow_redirects=True).status_code == 404, path


def test_the_page_needs_the_read_token_when_the_index_does(web_store: Path) -> None:
    for hot_path in (True, False):
        client = create_app(local_options(web_store, read_token="sekrit",
                                          hot_path=hot_path)).test_client()
        auth = {"Authorization": "Basic " + base64.b64encode(b"__token__:sekrit").decode()}
        for path in ("/", "/project/idna/", "/" + BROKEN_LOG,
                     "/provenance/idna/idna-3.10-py3-none-any.whl"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=auth).status_code == 200, path
        page = client.get("/", headers=auth)
        assert "private" in page.headers["Cache-Control"]
        assert "__token__:TOKEN@" in page.get_data(as_text=True)


def test_a_store_of_pure_wheels_lists_its_files(tmp_path: Path) -> None:
    from tests.distributions import write_wheel
    from wheelhouse.store.model import Origin

    store = Store(tmp_path / "pure")
    store.publish(write_wheel(tmp_path, "six", "1.16.0"), origin=Origin.UPSTREAM)
    text = create_app(local_options(tmp_path / "pure")).test_client().get("/").get_data(
        as_text=True)
    assert 'href="/files/six/six-1.16.0-py3-none-any.whl"' in text
    assert '<th scope="col">files</th>' in text


def test_an_empty_store_says_how_to_fill_it(tmp_path: Path) -> None:
    Store(tmp_path / "empty")
    page = create_app(local_options(tmp_path / "empty")).test_client().get("/")
    assert page.status_code == 200 and "The store is empty" in page.get_data(as_text=True)


# -- in a browser -----------------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run does)")
    return found


def browse(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_e_the_page_in_headless_chromium(web_store: Path, tmp_path: Path) -> None:
    server = start_server(web_store, tmp_path / "server.log")
    try:
        dom = browse(tmp_path, "--dump-dom", f"{server.url}/")
        cells = cells_of(dom)
        assert {k[2] for k in cells} == {ARM, X86, MUSL}
        assert {c["state"] for c in cells.values()} == {"built", "upstream", "failed", "none"}
        failed = cells[("whdemo-ext", "1.0.0", MUSL)]
        links = failed["links"]
        assert isinstance(links, dict)
        # The failed entry's log, followed in the browser: the text the build wrote.
        log_dom = browse(tmp_path, "--dump-dom", urljoin(f"{server.url}/", links["log"]))
        assert CAUSE in log_dom and "&lt;script&gt;" in log_dom
        project_dom = browse(tmp_path, "--dump-dom", urljoin(f"{server.url}/", links["failed"]))
        assert "install the Python headers in the builder image" in project_dom
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name, size in (("web-laptop.png", "1280,1000"), ("web-phone.png", "390,1400")):
            shot = tmp_path / name
            browse(tmp_path, f"--screenshot={shot}", f"--window-size={size}", f"{server.url}/")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
            shutil.copy(shot, ARTIFACTS / name)
        (ARTIFACTS / "web-matrix.json").write_text(json.dumps(
            {"|".join(k): v for k, v in sorted(cells.items())}, indent=2))
    finally:
        stop_server(server)


# -- the landing matrix and the defects found in daily use ------------------------------------


def test_the_stylesheet_is_not_html_escaped(client: FlaskClient) -> None:
    text = client.get("/").get_data(as_text=True)
    style = text.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "tr:last-child > *" in style and "&gt;" not in style


def test_the_landing_page_is_one_matrix_failures_first(client: FlaskClient) -> None:
    text = client.get("/").get_data(as_text=True)
    assert text.count("<table") == 1 and 'class="matrix pins"' in text
    rows = re.findall(r'<tr data-project="([^"]+)" data-version="([^"]+)"', text)
    assert rows[0] == ("whdemo-ext", "1.0.0"), rows
    assert len(rows) == len(set(rows)) == 5
    causes = text.split('class="causes"', 1)[1].split("</tr>", 1)[0]
    assert CAUSE in causes and f'href="/{BROKEN_LOG}"' in causes
    assert MUSL in causes


def test_a_project_with_only_failures_has_no_empty_files_table(tmp_path: Path) -> None:
    from wheelhouse.ledger import Failure, Ledger

    Store(tmp_path / "s")
    Ledger(tmp_path / "s").record_failure(Failure(
        key="k", project="never-built", version="1.0", target=X86, message="the build failed",
        log=None, time="2026-01-01T00:00:00.000000Z", cause=("boom",)))
    client = create_app(local_options(tmp_path / "s")).test_client()
    text = client.get("/project/never-built/").get_data(as_text=True)
    assert "Failed builds" in text and "boom" in text
    assert "<h3>Files</h3>" not in text and 'class="files"' not in text


def test_no_column_for_a_target_nobody_asked_for(tmp_path: Path) -> None:
    """A native build names the host's target (its glibc's policy); the cp311 wheels fetched
    for it used to add the default cp311-manylinux_x86_64 too: a column of dashes."""
    from tests.distributions import write_wheel
    from wheelhouse.store.model import Origin

    host = "cp311-manylinux_2_36_x86_64"
    store = Store(tmp_path / "s")
    store.publish(write_wheel(tmp_path, "app", "1.0"), origin=Origin.BUILT,
                  provenance={"target": host})
    store.publish(write_wheel(tmp_path, "fast", "2.0",
                              tag="cp311-cp311-manylinux_2_17_x86_64"), origin=Origin.UPSTREAM)
    matrix = build_matrix(store.files(), [])
    assert matrix.targets == (host,)
    assert [c.state for p in matrix.projects for v in p.versions for c in v.cells] == [
        State.BUILT, State.UPSTREAM]


def test_a_long_version_wraps_inside_its_cell(client: FlaskClient) -> None:
    text = client.get("/project/markupsafe/").get_data(as_text=True)
    style = text.split("<style>", 1)[1].split("</style>", 1)[0]
    row_head = re.search(r"th\[scope=row\] \{([^}]*)\}", style)
    assert row_head is not None
    assert "nowrap" not in row_head.group(1) and "overflow-wrap: anywhere" in row_head.group(1)


@pytest.mark.slow
def test_fifty_pins_in_headless_chromium(tmp_path: Path) -> None:
    """The landing view of a 50-pin store, failures first, at a laptop's and a phone's width:
    screenshots for a person to look at (test-artifacts/web-50-*.png)."""
    root = make_big_web_store(tmp_path / "big" / "store")
    server = start_server(root, tmp_path / "server.log")
    try:
        dom = browse(tmp_path, "--dump-dom", f"{server.url}/")
        rows = re.findall(r'<tr data-project="([^"]+)" data-version="([^"]+)"( class="failed")?',
                          dom)
        assert len(rows) == 53
        failed = [r[0] for r in rows if r[2]]
        assert failed == ["broken-0", "broken-1", "broken-2", "whdemo-ext"]
        assert [r[0] for r in rows[:4]] == failed
        assert LONG_VERSION in dom
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name, size in (("web-50-laptop.png", "1280,1400"), ("web-50-phone.png", "390,2400")):
            shot = tmp_path / name
            browse(tmp_path, f"--screenshot={shot}", f"--window-size={size}", f"{server.url}/")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            shutil.copy(shot, ARTIFACTS / name)
        shot = tmp_path / "project.png"
        browse(tmp_path, f"--screenshot={shot}", "--window-size=390,1200",
               f"{server.url}/project/long-version/")
        shutil.copy(shot, ARTIFACTS / "web-project-phone.png")
    finally:
        stop_server(server)
