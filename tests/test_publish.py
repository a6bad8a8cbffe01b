"""Tests of ``wheelhouse.publish``: a builder's store published to a real index server (our own,
started with ``make_server`` in a thread), uploading only what the index lacks."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.formparser import parse_form_data
from werkzeug.test import create_environ

from tests.conftest import local_options
from tests.distributions import write_wheel as make_wheel
from tests.test_upload import READ_TOKEN, TOKEN, make_sdist
from wheelhouse.errors import PublishError, WheelhouseError
from wheelhouse.publish.form import MultipartBody, form_fields
from wheelhouse.publish.remote import publish_missing, simple_url_for
from wheelhouse.server.serving import make_server
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

JSON = "application/vnd.pypi.simple.v1+json"


class Remote:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.base = f"http://127.0.0.1:{port}"
        self.upload_url = f"{self.base}/legacy/"

    def store(self) -> Store:
        return Store(self.root)

    def wait_for(self, project: str) -> None:
        """Until the server shows a file published behind its back (it looks twice a
        second)."""
        deadline = time.monotonic() + 5
        while True:
            try:
                self.page(project)
                return
            except urllib.error.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.05)

    def page(self, project: str, token: str | None = None) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.base}/simple/{project}/", headers={"Accept": JSON})
        if token is not None:
            import base64
            raw = base64.b64encode(f"__token__:{token}".encode()).decode()
            req.add_header("Authorization", f"Basic {raw}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            page: dict[str, Any] = json.load(resp)
            return page


@pytest.fixture
def remote_factory(tmp_path: Path) -> Iterator[Any]:
    servers: list[tuple[Any, threading.Thread]] = []

    def start(**options: Any) -> Remote:
        root = tmp_path / f"remote-{len(servers)}"
        if "upload_token" not in options:
            Store(root)
        server = make_server(local_options(root, threads=4, **options))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return Remote(root, server.port)

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def remote(remote_factory: Any) -> Remote:
    r: Remote = remote_factory(upload_token=TOKEN)
    return r


@pytest.fixture
def builder(tmp_path: Path) -> Store:
    """The store a build filled: two projects, wheels and an sdist."""
    src = tmp_path / "src"
    src.mkdir()
    store = Store(tmp_path / "builder")
    for path in [
        make_wheel(src, "wh-pub-a", "1.0", requires_python=">=3.9",
                   requires_dist=("wh-pub-b>=1",)),
        make_wheel(src, "wh-pub-a", "1.1"),
        make_sdist(src, "wh-pub-a", "1.1", requires_python=">=3.10"),
        make_wheel(src, "wh-pub-b", "1.0"),
    ]:
        store.publish(path, origin=Origin.BUILT)
    return store


def names(store: Store) -> list[str]:
    return [f.filename for f in store.files()]


def test_uploads_what_is_missing_and_then_nothing(builder: Store, remote: Remote) -> None:
    lines: list[str] = []
    report = publish_missing(builder, names(builder), remote.upload_url, TOKEN,
                             report=lines.append)
    assert sorted(report.uploaded) == sorted(names(builder))
    assert report.present == () and report.conflicts == () and report.ok
    assert len(lines) == 4 and all("uploaded" in line for line in lines)
    theirs = {f.filename: f.sha256 for f in remote.store().files()}
    assert theirs == {f.filename: f.sha256 for f in builder.files()}
    assert all(f.origin is Origin.UPLOADED for f in remote.store().files())
    # what the form carried reached the index: the sdist's Requires-Python
    page = remote.page("wh-pub-a")
    by_name = {f["filename"]: f for f in page["files"]}
    assert by_name["wh_pub_a-1.1.tar.gz"].get("requires-python") == ">=3.10"
    assert by_name["wh_pub_a-1.0-py3-none-any.whl"]["requires-python"] == ">=3.9"

    generation = remote.store().generation()
    lines.clear()
    again = publish_missing(builder, names(builder), remote.upload_url, TOKEN,
                            report=lines.append)
    assert again.uploaded == ()
    assert sorted(again.present) == sorted(names(builder))
    assert remote.store().generation() == generation
    assert all("already on" in line for line in lines)


def test_only_the_requested_files_and_only_missing_ones(
    builder: Store, remote: Remote
) -> None:
    # the remote already has one of them, byte for byte
    first = builder.get("wh_pub_a-1.0-py3-none-any.whl")
    assert first is not None
    remote.store().publish(builder.file_path(first), origin=Origin.UPLOADED)
    remote.wait_for("wh-pub-a")
    wanted = ["wh_pub_a-1.0-py3-none-any.whl", "wh_pub_a-1.1.tar.gz",
              "wh_pub_a-1.1.tar.gz", "not_built-1.0-py3-none-any.whl"]
    report = publish_missing(builder, wanted, remote.upload_url, TOKEN, report=lambda _: None)
    assert report.uploaded == ("wh_pub_a-1.1.tar.gz",)
    assert report.present == ("wh_pub_a-1.0-py3-none-any.whl",)
    assert report.not_in_store == ("not_built-1.0-py3-none-any.whl",)
    assert sorted(names(remote.store())) == ["wh_pub_a-1.0-py3-none-any.whl",
                                             "wh_pub_a-1.1.tar.gz"]


def test_conflicts_are_reported_never_overwritten(
    builder: Store, remote: Remote, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    theirs = make_wheel(other, "wh-pub-b", "1.0", module_source="OTHER = 1\n")
    remote.store().publish(theirs, origin=Origin.UPLOADED)
    remote.wait_for("wh-pub-b")
    lines: list[str] = []
    with pytest.raises(PublishError) as info:
        publish_missing(builder, names(builder), remote.upload_url, TOKEN, report=lines.append)
    error = info.value
    assert error.exit_code == 9 and isinstance(error, WheelhouseError)
    assert "wh_pub_b-1.0-py3-none-any.whl" in error.message
    assert error.hint and "new version or build tag" in error.hint
    assert error.report is not None
    (conflict,) = error.report.conflicts
    assert conflict.filename == "wh_pub_b-1.0-py3-none-any.whl"
    assert conflict.remote_sha256 == remote.store().files("wh-pub-b")[0].sha256
    assert conflict.local_sha256 != conflict.remote_sha256
    assert any("CONFLICT" in line for line in lines)
    # everything else still went up; the remote's file is untouched
    assert len(error.report.uploaded) == 3
    assert remote.store().get("wh_pub_b-1.0-py3-none-any.whl").sha256 == (  # type: ignore[union-attr]
        conflict.remote_sha256)


@pytest.mark.parametrize("token", ["wrong", None])
def test_refused_token_is_a_publish_error(builder: Store, remote: Remote,
                                          token: str | None) -> None:
    with pytest.raises(PublishError) as info:
        publish_missing(builder, names(builder), remote.upload_url, token,
                        report=lambda _: None)
    assert "WHEELHOUSE_UPLOAD_TOKEN" in (info.value.hint or "")
    assert info.value.report is not None and info.value.report.uploaded == ()
    assert remote.store().files() == []


def test_index_without_uploads_is_a_publish_error(builder: Store, remote_factory: Any) -> None:
    closed: Remote = remote_factory()
    with pytest.raises(PublishError, match="403"):
        publish_missing(builder, names(builder), closed.upload_url, TOKEN,
                        report=lambda _: None)


def test_index_that_needs_a_token_to_read(builder: Store, remote_factory: Any) -> None:
    private: Remote = remote_factory(upload_token=TOKEN, read_token=READ_TOKEN)
    report = publish_missing(builder, names(builder), private.upload_url, TOKEN,
                             report=lambda _: None)
    assert len(report.uploaded) == 4
    assert len(private.page("wh-pub-a", token=READ_TOKEN)["files"]) == 3


def test_unreachable_index_is_a_publish_error(builder: Store) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PublishError, match="cannot reach"):
        publish_missing(builder, names(builder), f"http://127.0.0.1:{port}/legacy/", TOKEN,
                        report=lambda _: None)


@pytest.mark.parametrize(("upload", "simple"), [
    ("http://h:8080/legacy/", "http://h:8080/simple/"),
    ("http://h:8080/legacy", "http://h:8080/simple/"),
    ("https://h/mount/legacy/", "https://h/mount/simple/"),
    ("http://__token__:secret@h/legacy/", "http://__token__:secret@h/simple/"),
])
def test_simple_url_for(upload: str, simple: str) -> None:
    assert simple_url_for(upload) == simple


@pytest.mark.parametrize("upload", ["http://h/", "https://upload.example/upload/",
                                    "ftp://h/legacy/", "http://user:secret@h/x/"])
def test_simple_url_needs_a_wheelhouse_layout(upload: str) -> None:
    with pytest.raises(PublishError) as info:
        simple_url_for(upload)
    assert "secret" not in info.value.message


def test_explicit_simple_url(builder: Store, remote: Remote) -> None:
    report = publish_missing(builder, names(builder)[:1], remote.upload_url, TOKEN,
                             simple_url=remote.base + "/simple", report=lambda _: None)
    assert len(report.uploaded) == 1


def test_form_fields_come_from_the_metadata(builder: Store, tmp_path: Path) -> None:
    import zipfile

    src = tmp_path / "rich"
    src.mkdir()
    wheel = make_wheel(src, "Wh.Rich", "2.0")
    metadata = (
        b"Metadata-Version: 2.4\nName: Wh.Rich\nVersion: 2.0\nSummary: rich metadata\n"
        b"Home-page: https://example.org\nLicense-Expression: MIT\n"
        b"Classifier: Programming Language :: Python :: 3\nClassifier: Typing :: Typed\n"
        b"Requires-Dist: idna>=3\nRequires-Dist: six; extra == 'six'\nProvides-Extra: six\n"
        b"Project-URL: Source, https://example.org/src\nRequires-Python: >=3.9\n"
        b"Description-Content-Type: text/markdown\n\n# Wh.Rich\n\nLong description.\n"
    )
    rewritten = src / "out" / wheel.name
    rewritten.parent.mkdir()
    with zipfile.ZipFile(wheel) as zin, zipfile.ZipFile(rewritten, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            zout.writestr(item, metadata if item.filename.endswith("METADATA") else data)
    f = builder.publish(rewritten, origin=Origin.BUILT).file
    fields = form_fields(builder, f)
    multi: dict[str, list[str]] = {}
    for key, value in fields:
        multi.setdefault(key, []).append(value)
    assert multi["name"] == ["Wh.Rich"]  # the un-normalized name, as twine sends it
    assert multi["version"] == ["2.0"]
    assert multi["metadata_version"] == ["2.4"]
    assert multi["classifiers"] == ["Programming Language :: Python :: 3", "Typing :: Typed"]
    assert multi["requires_dist"] == ["idna>=3", "six; extra == 'six'"]
    assert multi["provides_extra"] == ["six"]
    assert multi["project_urls"] == ["Source, https://example.org/src"]
    assert multi["home_page"] == ["https://example.org"]
    assert multi["license_expression"] == ["MIT"]
    assert multi["requires_python"] == [">=3.9"]
    assert multi["description_content_type"] == ["text/markdown"]
    assert multi["description"] == ["# Wh.Rich\n\nLong description.\n"]
    assert multi["filetype"] == ["bdist_wheel"] and multi["pyversion"] == ["py3"]
    sdist = builder.get("wh_pub_a-1.1.tar.gz")
    assert sdist is not None
    sdist_fields = dict(form_fields(builder, sdist))
    assert sdist_fields["filetype"] == "sdist" and sdist_fields["pyversion"] == "source"
    assert sdist_fields["requires_python"] == ">=3.10"


@pytest.mark.parametrize("block", [1, 7, 100, 4096, 1 << 20, -1])
def test_multipart_body_is_what_a_form_parser_reads(tmp_path: Path, block: int) -> None:
    payload = tmp_path / "x_y-1.0-py3-none-any.whl"
    payload.write_bytes(bytes(range(256)) * 50)
    fields = [("name", "x-y"), ("classifiers", "A :: B"), ("classifiers", "C :: D"),
              ("description", "ünïcode\r\nlines\n"), ("quote", 'a "quoted" value')]
    body = MultipartBody(fields, ("content", payload.name, payload))
    data = bytearray()
    while chunk := body.read(block):
        data += chunk
        if block < 0:
            break
    assert len(data) == len(body)
    environ = create_environ("/", method="POST", input_stream=io.BytesIO(bytes(data)),
                             content_type=body.content_type, content_length=len(data))
    _stream, form, files = parse_form_data(environ)
    assert form.getlist("classifiers") == ["A :: B", "C :: D"]
    assert form["description"] == "ünïcode\r\nlines\n"
    assert form["name"] == "x-y"
    assert form["quote"] == 'a "quoted" value'
    assert files["content"].filename == payload.name
    assert files["content"].read() == payload.read_bytes()
