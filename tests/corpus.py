"""A corpus of bad inputs for a running index, sent as raw bytes over loopback: broken HTTP,
hostile paths and headers, and uploads that must never be stored (malformed forms, corrupt
or lying archives, look-alikes of a published release). Used by ``tests/test_hostile_inputs.py``
and ``bench/bench_hostile.py``; every probe must be answered 4xx (or, for the few marked so,
any non-5xx answer) and none may add a file to the store."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import socket
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tests.distributions import dist_name, wheel_bytes

#: The release the store holds before the corpus runs (see ``original``).
PROJECT, VERSION = "click", "8.1.7"


@dataclass(frozen=True)
class Probe:
    label: str
    data: bytes
    #: "4xx": must be refused; "ok": any answer but a 5xx (odd but harmless requests).
    expect: str = "4xx"


@dataclass
class Tally:
    tried: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def line(self, stored: int) -> str:
        c = self.by_class
        return (f"tried {self.tried}, 4xx {c['4xx']}, 5xx {c['5xx']}, other answers "
                f"{c['2xx'] + c['3xx']}, closed or unanswered {c['closed']}, "
                f"stored {stored}")


def original() -> bytes:
    """The published wheel every look-alike tries to shadow."""
    return wheel_bytes(PROJECT, VERSION, module_source="WHERE = 'original'\n")


def evil(version: str = VERSION, name: str = PROJECT) -> bytes:
    return wheel_bytes(name, version, module_source="WHERE = 'evil'\n")


# -- requests -----------------------------------------------------------------------------------


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if body and not any(h.lower().startswith(("content-length", "transfer-encoding"))
                        for h in headers):
        head.append(f"Content-Length: {len(body)}")
    head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + body


def auth(token: str, user: str = "__token__") -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


BOUNDARY = "corpusBoundary1234"


def multipart(parts: list[tuple[str, bytes, str | None]], boundary: str = BOUNDARY) -> bytes:
    """``(name, value, filename or None)`` parts as multipart/form-data."""
    out = io.BytesIO()
    for name, value, filename in parts:
        out.write(f"--{boundary}\r\n".encode())
        disposition = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out.write(disposition.encode("utf-8", "surrogateescape") + b"\r\n\r\n")
        out.write(value + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()


def upload_form(filename: str, data: bytes, **overrides: str | None) -> list[
        tuple[str, bytes, str | None]]:
    """The fields twine sends for ``data`` as ``filename``; None drops a field."""
    wheel = filename.endswith(".whl")
    parts = filename.split("-")
    fields: dict[str, str | None] = {
        ":action": "file_upload", "protocol_version": "1",
        "name": parts[0], "version": parts[1].removesuffix(".tar.gz") if len(parts) > 1 else "",
        "filetype": "bdist_wheel" if wheel else "sdist",
        "pyversion": parts[-3] if wheel and len(parts) >= 3 else "source",
        "metadata_version": "2.1", "sha256_digest": hashlib.sha256(data).hexdigest(),
    }
    fields.update(overrides)
    form: list[tuple[str, bytes, str | None]] = [
        (k, v.encode("utf-8", "surrogateescape"), None) for k, v in fields.items()
        if v is not None]
    form.append(("content", data, filename))
    return form


def upload(token: str, filename: str, data: bytes, **overrides: str | None) -> bytes:
    body = multipart(upload_form(filename, data, **overrides))
    return request("POST", "/legacy/", auth(token),
                   f"Content-Type: multipart/form-data; boundary={BOUNDARY}", body=body)


# -- archives -----------------------------------------------------------------------------------


def _member_offset(data: bytes, member: str) -> tuple[int, int]:
    """(start of the member's compressed bytes, their length) from its local header."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    local = info.header_offset
    name_len = int.from_bytes(data[local + 26:local + 28], "little")
    extra_len = int.from_bytes(data[local + 28:local + 30], "little")
    return local + 30 + name_len + extra_len, info.compress_size


def encrypted_metadata(name: str, version: str) -> bytes:
    """A wheel whose METADATA member says it is encrypted (flag bit 0)."""
    data = bytearray(wheel_bytes(name, version))
    member = f"{dist_name(name)}-{version}.dist-info/METADATA".encode()
    at = 0
    while (at := data.find(member, at + 1)) > 0:
        if data[at - 30:at - 26] == b"PK\x03\x04":
            data[at - 30 + 6] |= 1
        elif data[at - 46:at - 42] == b"PK\x01\x02":
            data[at - 46 + 8] |= 1
    return bytes(data)


def broken_deflate(name: str, version: str) -> bytes:
    """A wheel whose METADATA's deflate stream is garbage (a reserved block type)."""
    src = zipfile.ZipFile(io.BytesIO(wheel_bytes(name, version)))
    # wheel_bytes stores its members; this one must be deflated to have a stream to break.
    data = bytearray(_zip({i.filename: src.read(i) for i in src.infolist()}))
    start, length = _member_offset(bytes(data), f"{dist_name(name)}-{version}.dist-info/METADATA")
    data[start:start + length] = b"\xff" * length
    return bytes(data)


def _damaged(data: bytes, member: str) -> bytes:
    """``data`` with one byte of ``member``'s stored bytes flipped (its CRC no longer fits)."""
    out = bytearray(data)
    start, length = _member_offset(data, member)
    out[start + length // 2] ^= 0x55
    return bytes(out)


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return buf.getvalue()


def _meta(name: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()


def _sdist(root: str, members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(f"{root}{member}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def bad_archives() -> Iterator[tuple[str, str, bytes]]:
    """(label, filename, bytes) of distributions the index must refuse whatever the form."""
    n, v = "corpus-pkg", "1.0"
    whl = f"corpus_pkg-{v}-py3-none-any.whl"
    info = f"corpus_pkg-{v}.dist-info"
    good = wheel_bytes(n, v)
    yield "encrypted METADATA", whl, encrypted_metadata(n, v)
    yield "broken deflate stream", whl, broken_deflate(n, v)
    yield "not a zip", whl, b"this is not a zip archive"
    yield "empty file", whl, b""
    yield "truncated zip", whl, good[: len(good) // 2]
    yield "zip without its end record", whl, good[:-22]
    yield "bad CRC in a module", whl, _damaged(good, "corpus_pkg/__init__.py")
    yield "no METADATA", whl, _zip({"corpus_pkg/__init__.py": b""})
    yield "two METADATA", whl, _zip({f"{info}/METADATA": _meta(n, v),
                                     f"other-{v}.dist-info/METADATA": _meta(n, v)})
    yield "METADATA names another project", whl, _zip({f"{info}/METADATA": _meta("other", v)})
    yield "METADATA has another version", whl, _zip({f"{info}/METADATA": _meta(n, "2.0")})
    yield "METADATA without Name", whl, _zip({f"{info}/METADATA": b"Version: 1.0\n"})
    yield "METADATA binary junk", whl, _zip({f"{info}/METADATA": bytes(range(256)) * 4})
    yield "metadata folder of another project", whl, _zip(
        {f"other-{v}.dist-info/METADATA": _meta(n, v)})
    yield "METADATA compressed with bzip2", whl, _zip({f"{info}/METADATA": _meta(n, v)},
                                                      zipfile.ZIP_BZIP2)
    yield "METADATA compressed with lzma", whl, _zip({f"{info}/METADATA": _meta(n, v)},
                                                     zipfile.ZIP_LZMA)
    yield "METADATA bomb (17 MiB)", whl, _zip(
        {f"{info}/METADATA": _meta(n, v) + b"\n" + b"a" * (17 << 20)})
    sdist = f"corpus_pkg-{v}.tar.gz"
    root = f"corpus_pkg-{v}/"
    yield "sdist not gzip", sdist, b"\x1f\x8b not gzip at all"
    yield "sdist truncated", sdist, _sdist(root, {"PKG-INFO": _meta(n, v)})[:40]
    yield "sdist without PKG-INFO", sdist, _sdist(root, {"setup.py": b""})
    yield "sdist PKG-INFO of another project", sdist, _sdist(root, {"PKG-INFO": _meta("x", v)})
    yield "sdist PKG-INFO of another version", sdist, _sdist(root, {"PKG-INFO": _meta(n, "9")})
    yield "sdist PKG-INFO outside its folder", sdist, _sdist("", {"PKG-INFO": _meta(n, v)})


# -- the corpus ---------------------------------------------------------------------------------


def corpus(token: str) -> Iterator[Probe]:
    """Every probe, in a fixed order. ``token`` is the server's upload token."""
    yield from _protocol()
    yield from _paths()
    yield from _headers()
    yield from _uploads(token)


def _protocol() -> Iterator[Probe]:
    yield Probe("empty request line", b"\r\n\r\n")
    yield Probe("garbage", b"GARBAGE\r\n\r\n")
    yield Probe("binary garbage", bytes(range(256)) * 8 + b"\r\n\r\n")
    yield Probe("no HTTP version", b"GET /simple/\r\n\r\n")
    yield Probe("HTTP/0.9", b"GET /simple/\r\n")
    yield Probe("HTTP/2 preface in cleartext", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    yield Probe("HTTP/3.0 version", b"GET /simple/ HTTP/3.0\r\nHost: x\r\n\r\n")
    yield Probe("unknown method", request("FROB", "/simple/"))
    yield Probe("NUL in method", request("G\x00T", "/simple/"))
    yield Probe("lower-case method", request("get", "/simple/"), "ok")
    yield Probe("TRACE", request("TRACE", "/simple/"))
    yield Probe("CONNECT", b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n")
    yield Probe("OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "ok")
    yield Probe("PUT on a page", request("PUT", "/simple/click/", body=b"x"))
    yield Probe("DELETE on a file", request("DELETE", f"/files/click/{_whl()}"))
    yield Probe("POST on a page", request("POST", "/simple/", body=b"x"))
    yield Probe("URL of 100 KB", request("GET", "/simple/" + "a" * 100_000 + "/"))
    # granian refuses these; werkzeug's server reads past them and serves the page.
    yield Probe("header without colon", b"GET /simple/ HTTP/1.1\r\nHost x\r\n\r\n", "ok")
    yield Probe("header with NUL", b"GET /simple/ HTTP/1.1\r\nHost: a\x00b\r\n\r\n", "ok")
    yield Probe("header name with space", b"GET /simple/ HTTP/1.1\r\nHo st: x\r\n\r\n",
                "ok")
    yield Probe("folded header",
                b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n b\r\n\r\n", "ok")
    yield Probe("2000 headers", request("GET", "/simple/",
                                        *(f"X-H{i}: {i}" for i in range(2000))))
    yield Probe("header of 1 MiB", request("GET", "/simple/", "X-Big: " + "a" * (1 << 20)))
    yield Probe("two Content-Lengths", request("POST", "/legacy/", "Content-Length: 3",
                                               "Content-Length: 4", body=b"abcd"))
    yield Probe("negative Content-Length", request("POST", "/legacy/", "Content-Length: -1"))
    yield Probe("Content-Length not a number", request("POST", "/legacy/",
                                                       "Content-Length: lots"))
    yield Probe("bad chunk size", request("POST", "/legacy/", "Transfer-Encoding: chunked",
                                          body=b"zz\r\nabc\r\n0\r\n\r\n"))
    yield Probe("chunked and Content-Length", request(
        "POST", "/legacy/", "Transfer-Encoding: chunked", "Content-Length: 5",
        body=b"0\r\n\r\n"))
    yield Probe("unknown transfer coding", request("POST", "/legacy/",
                                                   "Transfer-Encoding: gzip", body=b"abc"))
    yield Probe("absolute URI of another host", b"GET http://evil.example/simple/ HTTP/1.1\r\n"
                b"Host: evil.example\r\nConnection: close\r\n\r\n", "ok")


def _whl(version: str = VERSION) -> str:
    return f"{PROJECT}-{version}-py3-none-any.whl"


def _paths() -> Iterator[Probe]:
    paths = [
        "/simple/../../etc/passwd", "/simple/%2e%2e/%2e%2e/etc/passwd",
        "/files/../catalogue.sqlite3", "/files/click/../../catalogue.sqlite3",
        "/files/click/..%2F..%2Fcatalogue.sqlite3", "/files/%2e%2e/catalogue.sqlite3",
        "/files/click/%2e%2e%2fcatalogue.sqlite3", "/files/click/", "/files/click",
        "/files/", "/files/click/x/y", "/files/click/../click/" + _whl(),
        "/files/click/click-8.1.7-py3-none-any.whl%00", "/files/click/%00",
        "/files/click/click-8.1.7-py3-none-any.whl/..", "/files/click/.metadata",
        "/files/click/" + _whl() + ".metadata.metadata", "/files/Click/" + _whl(),
        "/files/other/" + _whl(), "/files/click/" + _whl().upper(),
        "/simple/%zz/", "/simple/%C0%AE%C0%AE/", "/simple/%FF%FE/", "/simple/%00/",
        "/simple/\u00e9t\u00e9/", "/simple/" + "x" * 5000 + "/", "/simple/-bad-/",
        "/simple/a..b/", "/simple/_/", "/simple/click/extra/", "/simple/click/extra",
        "//simple//click//", "/simple/nonexistent-project/", "/simple/%2Fetc%2Fpasswd/",
        "/links/../catalogue.sqlite3", "/links/x", "/health/..", "/catalogue.sqlite3",
        "/tmp/", "/locks/", "/.wheelhouse-export.json", "/legacy/", "/admin/",
        "/simple/click/?format=%ff", "/simple/?format=application/json",
        "/simple/?format=text/plain&format=", "/simple/?" + "a=b&" * 5000,
        "/simple/click\\/", "/simple/\\..\\..\\etc\\passwd/",
    ]
    for path in paths:
        # Raw, as sent: the server's own parser must cope with every byte of it.
        data = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        # Odd but harmless: an unsupported ?format= falls back to Accept (the spec allows it).
        expect = "ok" if "?" in path or path in (
            "/files/click/../click/" + _whl(), "//simple//click//", "/simple/click/extra"
        ) else "4xx"
        yield Probe(f"path {path[:60]}", data, expect)


def _headers() -> Iterator[Probe]:
    page, f = "/simple/click/", f"/files/click/{_whl()}"
    cases: list[tuple[str, str, str, str]] = [
        ("Accept garbage", page, "Accept: \x01\x02garbage;;;q=", "4xx"),
        ("Accept only application/json", page, "Accept: application/json", "4xx"),
        ("Accept of 2000 types", page, "Accept: " + ",".join(f"a/b{i}" for i in range(2000)),
         "4xx"),
        ("Accept q=abc", page, "Accept: text/html;q=abc", "ok"),
        ("Accept q=0 everything", page, "Accept: */*;q=0", "4xx"),
        ("If-None-Match of 64 KiB", page, "If-None-Match: " + '"x",' * 16000, "ok"),
        ("If-Modified-Since garbage", page, "If-Modified-Since: yesterday-ish", "ok"),
        ("Range garbage", f, "Range: bytes=garbage", "ok"),
        ("Range beyond the end", f, "Range: bytes=999999999-", "4xx"),
        ("Range reversed", f, "Range: bytes=5-1", "ok"),
        ("2000 ranges", f, "Range: bytes=" + ",".join(f"{i}-{i}" for i in range(2000)), "ok"),
        ("Authorization garbage", page, "Authorization: Basic !!!notbase64", "ok"),
        ("Authorization of 64 KiB", page, "Authorization: Basic " + "QUFB" * 16000, "ok"),
        ("Authorization without scheme", page, "Authorization: secret", "ok"),
    ]
    for label, path, header, expect in cases:
        yield Probe(label, request("GET", path, header), expect)


def _uploads(token: str) -> Iterator[Probe]:
    good_name = "corpus_pkg-1.0-py3-none-any.whl"
    good = wheel_bytes("corpus-pkg", "1.0")
    ctype = f"Content-Type: multipart/form-data; boundary={BOUNDARY}"
    body = multipart(upload_form(good_name, good))
    # -- who may upload
    yield Probe("upload without credentials", request("POST", "/legacy/", ctype, body=body))
    yield Probe("upload with a wrong token", request("POST", "/legacy/", auth("wrong"), ctype,
                                                     body=body))
    yield Probe("upload with an empty token", request("POST", "/legacy/", auth(""), ctype,
                                                      body=body))
    yield Probe("upload with a token prefix", request("POST", "/legacy/", auth(token[:-1]),
                                                      ctype, body=body))
    yield Probe("upload with Bearer", request("POST", "/legacy/", f"Authorization: Bearer "
                                              f"{token}", ctype, body=body))
    # -- the request itself
    a = auth(token)
    yield Probe("upload not multipart", request("POST", "/legacy/", a,
                                                "Content-Type: text/plain", body=body))
    yield Probe("upload without boundary", request("POST", "/legacy/", a,
                                                   "Content-Type: multipart/form-data",
                                                   body=body))
    yield Probe("upload with another boundary", request(
        "POST", "/legacy/", a, "Content-Type: multipart/form-data; boundary=other", body=body))
    yield Probe("upload with a non-ASCII boundary", request(
        "POST", "/legacy/", a, "Content-Type: multipart/form-data; boundary=\u00e9\u00e9",
        body=body))
    for cut in (1, 10, len(body) // 3, len(body) // 2, len(body) - 5):
        yield Probe(f"upload body cut at {cut}", request(
            "POST", "/legacy/", a, ctype, f"Content-Length: {len(body)}", body=body[:cut]))
    yield Probe("upload declaring 2 GiB", request("POST", "/legacy/", a, ctype,
                                                  f"Content-Length: {2 << 30}", body=b"x"))
    yield Probe("upload body of garbage", request("POST", "/legacy/", a, ctype,
                                                  body=bytes(range(256)) * 64))
    yield Probe("upload without closing boundary", request(
        "POST", "/legacy/", a, ctype, body=body.replace(f"--{BOUNDARY}--".encode(), b"")))
    yield Probe("upload of 6000 parts", request("POST", "/legacy/", a, ctype, body=multipart(
        [(f"f{i}", b"x", None) for i in range(6000)])))
    # -- the form
    bad_fields: list[tuple[str, dict[str, str | None]]] = [
        ("no :action", {":action": None}), ("other :action", {":action": "remove_pkg"}),
        ("protocol_version 2", {"protocol_version": "2"}),
        ("no digests", {"sha256_digest": None}), ("wrong sha256", {"sha256_digest": "0" * 64}),
        ("non-hex sha256", {"sha256_digest": "zz"}),
        ("wrong blake2", {"blake2_256_digest": "0" * 64}),
        ("name of another project", {"name": "other"}), ("another version", {"version": "2.0"}),
        ("invalid version", {"version": "not a version"}),
        ("filetype sdist", {"filetype": "sdist"}),
        ("bad requires_python", {"requires_python": ">=3.8,,<"}),
        ("field not UTF-8", {"summary": "\udcff\udcfe"}),
        ("repeated name with other values", {}),
    ]
    for label, fields in bad_fields:
        form = upload_form(good_name, good, **fields)
        if label.startswith("repeated"):
            form.insert(0, ("name", b"someone-else", None))
        yield Probe(f"upload {label}", request("POST", "/legacy/", a, ctype,
                                               body=multipart(form)))
    no_content = [p for p in upload_form(good_name, good) if p[0] != "content"]
    yield Probe("upload without content", request("POST", "/legacy/", a, ctype,
                                                  body=multipart(no_content)))
    two = [*upload_form(good_name, good), ("content", good, good_name)]
    yield Probe("upload with two content parts", request("POST", "/legacy/", a, ctype,
                                                         body=multipart(two)))
    # -- filenames
    for filename in [
        "../corpus_pkg-1.0-py3-none-any.whl", "/etc/corpus_pkg-1.0-py3-none-any.whl",
        "sub/corpus_pkg-1.0-py3-none-any.whl", "sub\\corpus_pkg-1.0-py3-none-any.whl",
        ".corpus_pkg-1.0-py3-none-any.whl", "corpus_pkg-1.0-py3-none-any.whl\x00.txt",
        "corpus_pkg-1.0-py3-none-any.exe", "corpus_pkg-1.0.egg", "corpus_pkg-1.0.zip",
        "corpus_pkg-1.0.tar.bz2", "corpus_pkg-1.0-py3-none.whl", "corpus pkg-1.0-py3-none-any.whl",
        "corpus_pkg-1.0-py3-none-linux_x86_64.whl",
        "corpus_pkg-1.0-cp311-cp311-manylinux_2_999_x86_64.whl",
        "corpus_pkg-1.0-cp311-cp311-musllinux_1_99_x86_64.whl",
        "corpus_pkg-1.0-cp311-cp311-manylinux_2_17_sparc.whl", "x" * 300 + ".whl",
        "corpus_pkg-1.0+local-py3-none-any.whl", "corpus_pkg-1.0-1-py3-none-any.whl",
        "corpus-pkg-1.0.tar.gz", "Corpus_Pkg-1.0.tar.gz", "corpus_pkg-1.0+local.tar.gz",
        "\u00e9-1.0-py3-none-any.whl",
    ]:
        yield Probe(f"upload named {filename[:50]!r}", upload(token, filename, good, name=None,
                                                              version=None, filetype=None))
    # -- archives
    for label, filename, data in bad_archives():
        yield Probe(f"upload {label}", upload(token, filename, data, name=None, version=None))
    # -- look-alikes of the published release, with other bytes
    for filename, version in [
        (f"Click-{VERSION}-py3-none-any.whl", VERSION),
        (f"click-{VERSION}.0-py3-none-any.whl", f"{VERSION}.0"),
        (f"click-v{VERSION}-py3-none-any.whl", f"v{VERSION}"),
        (f"click-{VERSION}-1-py3-none-any.whl", VERSION),
        (f"click-{VERSION}+evil-py3-none-any.whl", f"{VERSION}+evil"),
        (f"CLICK-{VERSION}-py3-none-any.whl", VERSION),
        (f"click-{VERSION}.0.0-py3-none-any.whl", f"{VERSION}.0.0"),
        (f"click-{VERSION}-01-py3-none-any.whl", VERSION),
        (f"click-0{VERSION}-py3-none-any.whl", f"0{VERSION}"),
        (f"click-{VERSION}-py3-none-any.whl", VERSION),
    ]:
        data = evil(version)
        yield Probe(f"look-alike {filename}", upload(token, filename, data, name=None,
                                                     version=None))


def send(port: int, probe: Probe, *, timeout: float = 20.0) -> int:
    """The status the server answered ``probe`` with; 0 if it closed without an answer."""
    # No half-close after sending: hyper drops a connection whose client shut its side, so
    # a cut body is simply not finished, and the server's own timeouts must end it.
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(OSError):
            s.sendall(probe.data)
        head = b""
        with contextlib.suppress(OSError):
            while b"\r\n" not in head and len(head) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
    parts = head.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return 0


def replay(port: int, probes: list[Probe], *, timeout: float = 20.0,
           on_failure: Callable[[Probe, int], None] | None = None) -> Tally:
    """Send every probe on its own connection and classify the answers; a probe not
    answered within ``timeout`` counts as closed (granian still waits for a cut upload's
    body: see wheelhouse.server.bodies)."""
    tally = Tally()
    for probe in probes:
        status = send(port, probe, timeout=timeout)
        tally.tried += 1
        klass = "closed" if status == 0 else f"{status // 100}xx"
        tally.by_class[klass] += 1
        # Closing (or not answering) is a fine way to refuse broken HTTP; a 5xx never is.
        ok = klass != "5xx" and (probe.expect == "ok" or klass in ("4xx", "closed"))
        if not ok:
            tally.failures.append(f"{probe.label}: {status}")
            if on_failure is not None:
                on_failure(probe, status)
    return tally
