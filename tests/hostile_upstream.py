"""An upstream index on loopback that misbehaves on purpose, chosen by the project's name:

    hang-*      accepts the request and never answers
    trickle-*   sends its status line a byte a second, forever
    redirect-*  302 to another origin (a trap that counts what reaches it)
    big-*       a 50 MB page without a Content-Length
    json<K>-*   malformed PEP 691 JSON of kind K (see MALFORMED)
    badhash-*   a JSON page whose first file has a sha256 that is not hex
    anything else: a plain page with one file

Used by ``tests/test_hostile_upstream.py`` and ``bench/bench_hostile.py``."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON = "application/vnd.pypi.simple.v1+json"

#: Malformed JSON pages, each a way a PEP 691 page can be broken.
MALFORMED: tuple[bytes, ...] = (
    b"{this is not json",
    b'["a", "list", "at", "the", "top"]',
    b'{"meta": {"api-version": "1.1"}, "name": "x", "files": "not a list"}',
    b'{"meta": {"api-version": "1.1"}, "name": "x", "files": [{"filename": "x-1.0.tar.gz"}]}',
    b'{"meta": {"api-version": "2.0"}, "name": "x", "files": []}',
    b'{"meta": {"api-version": "1.1"}, "name": "x", "files": [{"filename": "x-1.0.tar.gz", '
    b'"url": "x-1.0.tar.gz", "hashes": "sha256=abc"}]}',
    b"[" * 200_000 + b"]" * 200_000,
    b'{"meta": {"api-version": "1.1"}, "name": "x", "files": [' + b"{}, " * 50_000 + b"{}]}",
)

_GOOD_SHA = hashlib.sha256(b"upstream file").hexdigest()


class Trap:
    """A server on another port: any request reaching it left the upstream's origin."""

    def __init__(self) -> None:
        trap = self
        self.hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                trap.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<a href='/secret-1.0.tar.gz'>secret-1.0.tar.gz</a>")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HostileUpstream:
    def __init__(self) -> None:
        self.trap = Trap()
        self.stop = threading.Event()
        self.asked: list[str] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.asked.append(self.path)
                with contextlib.suppress(OSError):
                    upstream.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/simple/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.trap.close()

    def answer(self, req: BaseHTTPRequestHandler) -> None:
        name = req.path.removeprefix("/simple/").strip("/")
        if name.startswith("hang-"):
            self.stop.wait(120)
        elif name.startswith("trickle-"):
            for byte in b"HTTP/1.1 200 OK\r\n" * 100:
                if self.stop.wait(1.0):
                    return
                req.wfile.write(bytes([byte]))
                req.wfile.flush()
        elif name.startswith("redirect-"):
            req.send_response(302)
            req.send_header("Location", f"{self.trap.url}/internal/admin")
            req.send_header("Content-Length", "0")
            req.end_headers()
        elif name.startswith("big-"):
            req.send_response(200)
            req.send_header("Content-Type", "text/html")
            req.end_headers()
            chunk = b"<a href='x'>x</a>" * 60_000  # ~1 MB
            for _ in range(50):
                if self.stop.is_set():
                    return
                req.wfile.write(chunk)
        elif name.startswith("json") and "-" in name:
            kind = int(name[4:name.index("-")])
            self.send(req, MALFORMED[kind], JSON)
        elif name.startswith("badhash-"):
            files = [
                {"filename": f"{name}-1.0.tar.gz", "url": f"/f/{name}-1.0.tar.gz",
                 "hashes": {"sha256": "zz" * 32}},
                {"filename": f"{name}-2.0.tar.gz", "url": f"/f/{name}-2.0.tar.gz",
                 "hashes": {"sha256": _GOOD_SHA}},
            ]
            import json

            body = json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files})
            self.send(req, body.encode(), JSON)
        else:
            self.send(req, f"<a href='/f/{name}-1.0.tar.gz#sha256={_GOOD_SHA}'>{name}-1.0.tar.gz"
                           "</a>".encode(), "text/html")

    @staticmethod
    def send(req: BaseHTTPRequestHandler, body: bytes, ctype: str) -> None:
        req.send_response(200)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)


def flood(base: str, names: list[str], *, timeout: float) -> list[int]:
    """GET each ``/simple/<name>/`` at once, each on its own connection; their statuses."""
    from tests.hostile import get

    statuses = [0] * len(names)

    def one(i: int) -> None:
        statuses[i] = get(f"{base}/simple/{names[i]}/", timeout=timeout)[0]

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(names))]
    for t in threads:
        t.start()
        time.sleep(0.002)
    for t in threads:
        t.join(timeout + 5)
    return statuses
