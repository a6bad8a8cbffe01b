"""Downloads answered by ``wheelhouse.server.files``: what the in-memory cache keeps, files
read from disk in blocks, ranges, and files that contradict the catalogue (what nginx answers
for the same requests is compared in tests/test_same_headers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.distributions import write_wheel
from wheelhouse.options import ServerOptions
from wheelhouse.server.app import create_app
from wheelhouse.server.files import Entry, FileCache, _range, answer_file
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    store = Store(tmp_path / "store")
    for version in ("1.0", "2.0"):
        store.publish(write_wheel(src, "whx-files", version), origin=Origin.UPLOADED)
    return tmp_path / "store"


def wheel_url(store_root: Path, version: str) -> tuple[str, bytes]:
    f = Store(store_root, readonly=True).get(f"whx_files-{version}-py3-none-any.whl")
    assert f is not None
    return (f"/files/{f.project}/{f.filename}",
            Store(store_root, readonly=True).file_path(f).read_bytes())


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-9", (0, 10)), ("bytes=5-", (5, 100)), ("bytes=-10", (90, 100)),
    ("bytes=-1000", (0, 100)), ("bytes=90-1000", (90, 100)), (" bytes = 1 - 2 ", (1, 3)),
    ("bytes=100-", False), ("bytes=-0", False), ("bytes=5-3", False), ("bytes=abc", False),
    ("bytes=-", False), ("bytes=\u0661-2", False),
    ("bytes=0-1,5-6", None), ("items=0-1", None), ("bytes", None),
])
def test_range_header(header: str, expected: tuple[int, int] | bool | None) -> None:
    assert _range(header, 100) == expected


def test_small_files_are_kept_within_the_budget(store_root: Path) -> None:
    one, body = wheel_url(store_root, "1.0")
    two, _ = wheel_url(store_root, "2.0")
    app = create_app(ServerOptions(store=store_root, file_cache_bytes=len(body)))
    cache = app.extensions["wheelhouse"].files
    client = app.test_client()
    assert client.get(one).data == body
    assert client.get(two).status_code == 200
    assert cache.used == len(body)  # the second did not fit
    # The first is answered from memory, even with the file gone.
    (store_root / one.removeprefix("/")).unlink()
    again = client.get(one)
    assert again.status_code == 200 and again.data == body


@pytest.mark.parametrize("hot_path", [True, False])
def test_files_beyond_the_budget_are_read_in_blocks(store_root: Path, hot_path: bool) -> None:
    url, body = wheel_url(store_root, "1.0")
    client = create_app(ServerOptions(store=store_root, file_cache_bytes=0,
                                      hot_path=hot_path)).test_client()
    assert client.get(url).data == body
    part = client.get(url, headers={"Range": "bytes=10-29"})
    assert part.status_code == 206 and part.data == body[10:30]
    head = client.head(url)
    assert head.data == b"" and head.headers["Content-Length"] == str(len(body))


def test_large_file_is_sent_whole_in_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big"
    data = bytes(range(256)) * (3 * 4096 + 7)  # > 3 MiB: several blocks
    path.write_bytes(data)
    entry = FileCache(max_file=1 << 20).entry(("big", "x"), str(path), len(data))
    assert entry.body is None
    from wheelhouse.server.files import Blocks
    got = answer_file(entry, {"REQUEST_METHOD": "GET"})
    assert got.span == (0, len(data))
    blocks = Blocks(got.path, got.span)
    assert b"".join(blocks) == data
    blocks.close()


@pytest.mark.parametrize("hot_path", [True, False])
def test_a_file_that_contradicts_the_catalogue_is_500(store_root: Path, hot_path: bool) -> None:
    url, body = wheel_url(store_root, "1.0")
    (store_root / url.removeprefix("/")).write_bytes(body + b"more")
    client = create_app(ServerOptions(store=store_root, hot_path=hot_path)).test_client()
    assert client.get(url).status_code == 500


def test_entry_validators_are_nginx_s(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    import os
    os.utime(path, (1_700_000_000, 1_700_000_000))
    entry: Entry = FileCache().entry(("f", None), str(path), 5)
    assert entry.etag == f'"{1_700_000_000:x}-5"'
    assert entry.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"
