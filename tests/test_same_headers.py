"""The live server and nginx on ``wheelhouse export`` of the same store answer the same status,
headers and bytes for the same request of a file or its ``.metadata``: downloads, HEAD,
ranges (as uv reads a wheel's zip directory and pip resumes), and revalidation. A client must
not be able to tell which of the two it talks to. ``slow``: needs the ``nginx`` binary.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.nginx import executable, start_nginx
from tests.test_export import ALPHA, BETA_WHEEL, LOCAL_WHEEL, NGINX_CONF, fetch, make_store
from tests.test_production import launch, stop, wait_ready
from wheelhouse.export import export

pytestmark = pytest.mark.slow

#: What a client or a cache acts on; Date and Server legitimately differ.
COMPARED = ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control",
            "Accept-Ranges", "Content-Range", "Content-Encoding", "Vary")


@dataclass(frozen=True)
class Pair:
    ours: str
    nginx: str


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if executable() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install -y nginx)")
    prefix = tmp_path_factory.mktemp("same-headers")
    store = make_store(prefix / "store")
    export(store, prefix / "export")
    proc, nginx_base = start_nginx(prefix, NGINX_CONF.read_text())
    try:
        running = wait_ready(launch(store, workers=1))
        try:
            yield Pair(ours=running.base, nginx=nginx_base)
        finally:
            stop(running.proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


PATHS = [f"/files/whx-beta/{BETA_WHEEL}", f"/files/whx-beta/{BETA_WHEEL}.metadata",
         f"/files/{ALPHA}/{LOCAL_WHEEL.replace('+', '%2B')}",
         f"/files/{ALPHA}/whx_alpha-1.0.tar.gz"]


def requests_for(validators: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    etag, last_modified = validators["ETag"], validators["Last-Modified"]
    return [
        ("GET", {}),
        ("HEAD", {}),
        ("GET", {"Accept-Encoding": "gzip, br"}),
        ("GET", {"Range": "bytes=0-99"}),
        ("HEAD", {"Range": "bytes=0-99"}),
        ("GET", {"Range": "bytes=-22"}),            # the zip end record, as uv reads it
        ("GET", {"Range": "bytes=100-"}),           # a resumed download
        ("GET", {"Range": "bytes=5-100000000"}),    # past the end: cut to the size
        ("GET", {"Range": "bytes=100000000-"}),     # unsatisfiable: 416
        ("GET", {"Range": "bytes=100-", "If-Range": etag}),
        ("GET", {"Range": "bytes=100-", "If-Range": '"other"'}),
        ("GET", {"Range": "bytes=100-", "If-Range": last_modified}),
        ("GET", {"If-None-Match": etag}),
        ("HEAD", {"If-None-Match": etag}),
        ("GET", {"If-None-Match": f'"x", W/{etag}'}),
        ("GET", {"If-None-Match": '"x"'}),
        ("GET", {"If-None-Match": etag, "Range": "bytes=0-9"}),  # 304 wins (RFC 9110 §13.2.2)
        ("GET", {"If-Modified-Since": last_modified}),
        ("GET", {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}),
        ("GET", {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}),  # later: 304
        ("GET", {"Range": "bytes=0-1,5-6"}),        # several ranges: the whole file
        ("GET", {"Range": "items=0-1"}),            # another unit: the whole file
        ("GET", {"Range": "bytes=abc"}),            # malformed: 416
        ("GET", {"Range": "bytes=-0"}),             # an empty suffix: 416
    ]


def answer(base: str, method: str, path: str, headers: dict[str, str]) -> tuple[object, ...]:
    status, got, body = fetch(base + path, method, **headers)
    if status == 416:
        # The error text is each server's own (nginx's names nginx); what a client acts on
        # is the status and the length in Content-Range.
        return (status, {"Content-Range": got.get("Content-Range")}, b"")
    return (status, {name: got.get(name) for name in COMPARED}, body)


@pytest.mark.parametrize("path", PATHS)
def test_files_and_metadata_answer_alike(pair: Pair, path: str) -> None:
    status, first, _ = fetch(pair.nginx + path)
    assert status == 200
    validators = {"ETag": first["ETag"], "Last-Modified": first["Last-Modified"]}
    differences = []
    for method, headers in requests_for(validators):
        ours = answer(pair.ours, method, path, headers)
        theirs = answer(pair.nginx, method, path, headers)
        if ours != theirs:
            differences.append(f"{method} {headers}:\n  ours  {ours[:2]}\n  nginx {theirs[:2]}"
                               + ("" if ours[2] == theirs[2] else "\n  bodies differ"))
    assert not differences, "\n".join(differences)


def test_unknown_files_are_404_on_both(pair: Pair) -> None:
    for path in [f"/files/{ALPHA}/nope-1.0-py3-none-any.whl", f"/files/nope/{BETA_WHEEL}"]:
        assert fetch(pair.ours + path)[0] == fetch(pair.nginx + path)[0] == 404


def test_the_store_path_is_what_the_export_serves(tmp_path: Path) -> None:
    # The fixture's premise: the export hard-links or copies with the store file's mtime,
    # which is what both servers' validators are made of.
    store = make_store(tmp_path / "store")
    export(store, tmp_path / "export")
    for src in (store / "files").rglob("*"):
        if src.is_file():
            dst = tmp_path / "export" / "files" / src.relative_to(store / "files")
            assert dst.stat().st_mtime_ns == src.stat().st_mtime_ns
