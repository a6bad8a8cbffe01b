"""Read your writes across granian's workers (issue 9): once an upload answers 200, the file,
its metadata and its pages are served by every worker, on the very next request."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import clean_env
from tests.corpus import upload
from tests.distributions import wheel_bytes
from tests.hostile import PIP_ACCEPT, get, serve
from wheelhouse.store.store import Store

pytestmark = pytest.mark.slow

TOKEN = "read-your-writes-token"
TRIES = 200


def _post(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_upload_then_get_on_every_worker(tmp_path: Path) -> None:
    Store(tmp_path / "store")
    (tmp_path / "token").write_text(TOKEN)
    served = serve(tmp_path / "store", "--upload-token-file", str(tmp_path / "token"),
                   "--workers", "2", env=clean_env())
    misses: list[str] = []
    try:
        for i in range(TRIES):
            # a new project each time, and a new file of an existing one
            name = f"wh-ryw-{i % 20}"
            version = f"1.{i}"
            filename = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
            answer = _post(served.port, upload(TOKEN, filename, wheel_bytes(name, version)))
            assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
            # each GET is a new connection, which the kernel hands to either worker
            for what, url, accept in (
                ("file", f"{served.base}/files/{name}/{filename}", "*/*"),
                ("metadata", f"{served.base}/files/{name}/{filename}.metadata", "*/*"),
                ("page", f"{served.base}/simple/{name}/", PIP_ACCEPT),
                ("page again", f"{served.base}/simple/{name}/", PIP_ACCEPT),
            ):
                status, body = get(url, headers={"Accept": accept})
                if status != 200:
                    misses.append(f"{what} of {filename}: {status}")
                elif what.startswith("page") and filename not in {
                        f["filename"] for f in json.loads(body)["files"]}:
                    misses.append(f"{what} of {filename}: not listed")
    finally:
        served.stop()
    assert misses == [], f"{len(misses)} misses over {TRIES} tries: {misses[:10]}"


def test_parallel_uploaders_read_their_writes(tmp_path: Path) -> None:
    """Six uploaders at once, each GETting its new project's page from a fresh connection the
    moment its upload answers 200 (issue: 28 of 240 got 404 within 1-13 ms: a worker still
    re-rendering for one commit answered others from its old snapshot)."""
    from concurrent.futures import ThreadPoolExecutor

    Store(tmp_path / "store")
    (tmp_path / "token").write_text(TOKEN)
    served = serve(tmp_path / "store", "--upload-token-file", str(tmp_path / "token"),
                   env=clean_env())

    def one(i: int) -> str | None:
        name = f"wh-par-{i}"
        filename = f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
        data = upload(TOKEN, filename, wheel_bytes(name, "1.0"))
        for _ in range(400):
            answer = _post(served.port, data)
            # all upload slots busy: retry, as twine and uv do (sooner than Retry-After)
            if not answer.startswith(b"HTTP/1.1 503"):
                break
            time.sleep(0.05)
        if not answer.startswith(b"HTTP/1.1 200"):
            return f"{filename}: upload answered {answer[:60]!r}"
        status, body = get(f"{served.base}/simple/{name}/", headers={"Accept": PIP_ACCEPT})
        if status != 200:
            return f"{name}: {status} after its upload's 200"
        if filename not in {f["filename"] for f in json.loads(body)["files"]}:
            return f"{name}: page lacks {filename}"
        return None

    try:
        with ThreadPoolExecutor(6) as pool:
            misses = [m for m in pool.map(one, range(240)) if m is not None]
    finally:
        served.stop()
    assert misses == [], f"{len(misses)} of 240: {misses[:10]}"
