"""Tests of the upload API (standards checklist section H) and of read tokens.

Validation is tested through the Flask test client, through both the hot path and Flask's own
routing; the tests marked ``slow`` run the real server (``make_server`` in a thread) against
the real clients, ``twine upload`` and ``uv publish``, and against hand-made broken requests
sent with ``http.client``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse, create_environ

from tests.conftest import SharedStore, local_options
from tests.distributions import write_wheel as make_wheel
from wheelhouse.distributions import platform_problem
from wheelhouse.errors import UsageError
from wheelhouse.options import ServerOptions, token_from_file
from wheelhouse.server.app import create_app
from wheelhouse.server.serving import make_server
from wheelhouse.store.backends import open_store
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

TOKEN = "upload-token-for-tests"
READ_TOKEN = "read-token-for-tests"
JSON = "application/vnd.pypi.simple.v1+json"

# -- distributions -----------------------------------------------------------------------------


def make_sdist(
    directory: Path,
    name: str,
    version: str,
    *,
    filename: str | None = None,
    pkg_name: str | None = None,
    pkg_version: str | None = None,
    requires_python: str | None = None,
) -> Path:
    """A PEP 625 sdist with a PKG-INFO and a second member (twine refuses an archive whose only
    member is PKG-INFO: it finds no top-level directory)."""
    dist = name.replace("-", "_").replace(".", "_").lower()
    base = f"{dist}-{version}"
    path = directory / (filename or f"{base}.tar.gz")
    pkg_info = (
        "Metadata-Version: 2.2\n"
        f"Name: {pkg_name or name}\n"
        f"Version: {pkg_version or version}\n"
        "Summary: a test sdist\n"
        + (f"Requires-Python: {requires_python}\n" if requires_python else "")
    ).encode()
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for member, data in [(f"{base}/PKG-INFO", pkg_info),
                             (f"{base}/pyproject.toml", b"[project]\n")]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def renamed(path: Path, filename: str) -> Path:
    """The same bytes under another name (to try tags and names the index must refuse)."""
    target = path.parent / "renamed" / filename
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(path, target)
    return target


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def form_for(path: Path, filename: str | None = None, **fields: Any) -> dict[str, Any]:
    """The fields twine sends, for the werkzeug test client; ``None`` drops a field."""
    data = path.read_bytes()
    name = filename or path.name
    wheel = name.endswith(".whl")
    project = name.split("-")[0]
    version = name.split("-")[1].removesuffix(".tar.gz")
    form: dict[str, Any] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": project,
        "version": version,
        "filetype": "bdist_wheel" if wheel else "sdist",
        "pyversion": name.split("-")[-3] if wheel else "source",
        "metadata_version": "2.1",
        "sha256_digest": sha256(data),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
        "content": (io.BytesIO(data), name),
    }
    for key, value in fields.items():
        key = key.replace("__", ":")
        if value is None:
            form.pop(key, None)
        else:
            form[key] = value
    return form


def basic(token: str, user: str = "__token__") -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{token}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


# -- fixtures and checks -----------------------------------------------------------------------


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "src"
    path.mkdir()
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(params=[True, False], ids=["hot", "flask"])
def app(request: pytest.FixtureRequest, root: Path) -> Flask:
    # The store does not exist yet: a server that accepts uploads creates it.
    return create_app(ServerOptions(store=root, upload_token=TOKEN, hot_path=request.param,
                                    max_upload_bytes=200_000))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def post(client: FlaskClient, form: dict[str, Any], *, token: str | None = TOKEN,
         path: str = "/legacy/") -> TestResponse:
    headers = basic(token) if token is not None else {}
    return client.post(path, data=form, headers=headers, content_type="multipart/form-data")


def stored(root: Path) -> list[tuple[str, str]]:
    return [(f.filename, f.sha256) for f in Store(root).files()]


def assert_refused(resp: TestResponse, status: int, root: Path, before: list[Any],
                   *words: str) -> None:
    """A 4xx with a message, nothing stored, nothing left in staging."""
    body = resp.get_data(as_text=True)
    assert resp.status_code == status, (resp.status, body)
    assert body.strip(), "a refusal must say why"
    for word in words:
        assert word in body, body
    assert stored(root) == before
    assert list((root / "tmp").iterdir()) == []


# == accepting ==================================================================================


@pytest.mark.parametrize("path", ["/legacy/", "/legacy"])
def test_upload_is_published_and_served_at_once(
    client: FlaskClient, root: Path, src: Path, path: str
) -> None:
    wheel = make_wheel(src, "Up_Load", "1.0", requires_python=">=3.8")
    resp = post(client, form_for(wheel), path=path)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert "published" in resp.get_data(as_text=True)
    (f,) = Store(root).files()
    assert f.filename == wheel.name and f.origin is Origin.UPLOADED
    assert f.provenance["upload"]["user_agent"].startswith("Werkzeug")
    # Visible immediately: the upload refreshed the server's state.
    page = client.get("/simple/up-load/", headers={"Accept": JSON}).get_json(force=True)
    (entry,) = page["files"]
    assert entry["filename"] == wheel.name
    assert entry["hashes"]["sha256"] == sha256(wheel.read_bytes())
    assert entry["requires-python"] == ">=3.8"
    assert entry["core-metadata"]
    assert client.get("/files/up-load/" + wheel.name).data == wheel.read_bytes()
    assert list((root / "tmp").iterdir()) == []


def test_sdist_upload_takes_requires_python_from_the_form(
    client: FlaskClient, root: Path, src: Path
) -> None:
    sdist = make_sdist(src, "up-load", "1.0", requires_python=">=3.9")
    resp = post(client, form_for(sdist, requires_python=">=3.9"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    page = client.get("/simple/up-load/", headers={"Accept": JSON}).get_json(force=True)
    (entry,) = page["files"]
    assert entry["requires-python"] == ">=3.9"
    assert entry["core-metadata"] is False  # never for an sdist


def test_same_bytes_again_is_a_no_op(client: FlaskClient, root: Path, src: Path) -> None:
    wheel = make_wheel(src, "up-load", "1.0")
    assert post(client, form_for(wheel)).status_code == 200
    before = Store(root).files()
    resp = post(client, form_for(wheel))
    assert resp.status_code == 200
    assert "already published" in resp.get_data(as_text=True)
    assert Store(root).files() == before
    assert Store(root).generation() == 1


def test_different_bytes_under_a_published_name_are_409(
    client: FlaskClient, root: Path, src: Path
) -> None:
    wheel = make_wheel(src, "up-load", "1.0")
    original = wheel.read_bytes()
    assert post(client, form_for(wheel)).status_code == 200
    before = stored(root)
    (src / "changed").mkdir()
    other = make_wheel(src / "changed", "up-load", "1.0", module_source="CHANGED = True\n")
    assert other.read_bytes() != original
    resp = post(client, form_for(other))
    assert_refused(resp, 409, root, before, "File already exists")
    # what twine --skip-existing looks for
    assert resp.status == "409 File already exists"
    assert client.get("/files/up-load/" + wheel.name).data == original


def test_accepted_platform_tags(client: FlaskClient, root: Path, src: Path) -> None:
    wheel = make_wheel(src, "tags", "1.0")
    for tag in ("cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
                "cp311-cp311-musllinux_1_2_aarch64", "cp311-abi3-manylinux2014_ppc64le",
                "py3-none-macosx_11_0_arm64", "cp312-cp312-win_amd64"):
        name = f"tags-1.0-{tag}.whl"
        resp = post(client, form_for(renamed(wheel, name)))
        assert resp.status_code == 200, (tag, resp.get_data(as_text=True))
    assert len(Store(root).files()) == 5


# == refusing ===================================================================================


@pytest.fixture
def before(client: FlaskClient, root: Path, src: Path) -> list[tuple[str, str]]:
    """The store after one good upload: refusals must leave it exactly so."""
    assert post(client, form_for(make_wheel(src, "present", "1.0"))).status_code == 200
    return stored(root)


def test_uploads_disabled_without_a_token(root: Path, src: Path) -> None:
    Store(root)
    client = create_app(ServerOptions(store=root)).test_client()
    resp = post(client, form_for(make_wheel(src, "x", "1.0")))
    assert resp.status_code == 403
    assert "WHEELHOUSE_UPLOAD_TOKEN" in resp.get_data(as_text=True)
    assert stored(root) == []


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer " + TOKEN},
    {"Authorization": "Basic !!!not-base64"},
    {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()},  # no colon
], ids=["none", "bearer", "garbage", "no-colon"])
def test_missing_credentials_are_401(
    client: FlaskClient, root: Path, src: Path, before: list[Any], headers: dict[str, str]
) -> None:
    resp = client.post("/legacy/", data=form_for(make_wheel(src, "x", "1.0")), headers=headers,
                       content_type="multipart/form-data")
    assert_refused(resp, 401, root, before, "__token__")
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="wheelhouse"'


@pytest.mark.parametrize("token", ["wrong", TOKEN + "x", "", READ_TOKEN, "ünïcode"])
def test_wrong_token_is_403(
    client: FlaskClient, root: Path, src: Path, before: list[Any], token: str
) -> None:
    resp = post(client, form_for(make_wheel(src, "x", "1.0")), token=token)
    assert_refused(resp, 403, root, before, "token")


def test_any_user_name_with_the_token_is_accepted(client: FlaskClient, src: Path) -> None:
    resp = client.post("/legacy/", data=form_for(make_wheel(src, "x", "1.0")),
                       headers=basic(TOKEN, user="ci-bot"), content_type="multipart/form-data")
    assert resp.status_code == 200


@pytest.mark.parametrize(("fields", "words"), [
    ({"sha256_digest": "0" * 64}, ["sha256_digest does not match"]),
    ({"sha256_digest": "zz"}, ["sha256_digest does not match"]),
    ({"blake2_256_digest": "0" * 64}, ["blake2_256_digest does not match"]),
    ({"sha256_digest": None, "blake2_256_digest": None}, ["sha256_digest"]),
    ({"__action": None}, [":action"]),
    ({"__action": "submit"}, ["file_upload"]),
    ({"__action": "remove_pkg"}, ["file_upload"]),
    ({"protocol_version": "2"}, ["protocol_version"]),
    ({"name": "other-project"}, ["other-project"]),
    ({"version": "2.0"}, ["2.0"]),
    ({"version": "not a version"}, ["not a version"]),
    ({"filetype": "sdist"}, ["filetype"]),
    ({"requires_python": ">=3.8,,<"}, ["requires_python"]),
    ({"content": None}, ["'content'"]),
])
def test_bad_fields_are_400(
    client: FlaskClient, root: Path, src: Path, before: list[Any],
    fields: dict[str, Any], words: list[str],
) -> None:
    resp = post(client, form_for(make_wheel(src, "up-load", "1.0"), **fields))
    assert_refused(resp, 400, root, before, *words)
    assert "already exist" not in resp.status.lower() + resp.get_data(as_text=True).lower()


@pytest.mark.parametrize("filename", [
    "../up_load-1.0-py3-none-any.whl",
    "sub/up_load-1.0-py3-none-any.whl",
    "sub\\up_load-1.0-py3-none-any.whl",
    ".up_load-1.0-py3-none-any.whl",
    "up_load-1.0..-py3-none-any.whl",
    "up_load-1.0-py3-none-any.whl\n",
    "up_load-1.0-py3-none-any.exe",
    "up_load-1.0.egg",
    "up_load-1.0-py3-none.whl",
    "up_load-1.0-py3-none-linux_x86_64.whl",
    "up_load-1.0-cp311-cp311-manylinux_2_999_x86_64.whl",
    "up_load-1.0-cp311-cp311-manylinux_2_51_x86_64.whl",
    "up_load-1.0-cp311-cp311-manylinux_3_0_x86_64.whl",
    "up_load-1.0-cp311-cp311-manylinux_2_17_sparc.whl",
    "up_load-1.0-cp311-cp311-musllinux_1_99_x86_64.whl",
    "up_load-1.0-cp311-cp311-manylinux2014_x86_64.linux_x86_64.whl",
    "up_load-1.0.zip",
    "up_load-1.0.tar.bz2",
])
def test_bad_filenames_are_400(
    client: FlaskClient, root: Path, src: Path, before: list[Any], filename: str
) -> None:
    wheel = make_wheel(src, "up-load", "1.0")
    form = form_for(wheel, content=(io.BytesIO(wheel.read_bytes()), filename),
                    name=None, version=None, filetype=None)
    assert_refused(post(client, form), 400, root, before)


@pytest.mark.parametrize("tag", ["linux_x86_64", "manylinux_2_999_x86_64",
                                 "musllinux_2_1_x86_64", "manylinux_2_4_x86_64"])
def test_platform_problems_name_the_tag(tag: str) -> None:
    from packaging.tags import Tag

    problem = platform_problem(Tag("cp311", "cp311", tag))
    assert problem is not None and tag in problem


def test_wheel_whose_metadata_disagrees_is_400(
    client: FlaskClient, root: Path, src: Path, before: list[Any]
) -> None:
    # METADATA says "someone-else"; the filename says up-load.
    other = make_wheel(src, "someone-else", "1.0")
    wheel = renamed(other, "up_load-1.0-py3-none-any.whl")
    assert_refused(post(client, form_for(wheel)), 400, root, before, "METADATA")


def test_wheel_that_is_not_a_zip_is_400(
    client: FlaskClient, root: Path, src: Path, before: list[Any]
) -> None:
    fake = src / "up_load-1.0-py3-none-any.whl"
    fake.write_bytes(b"this is not a zip archive")
    assert_refused(post(client, form_for(fake)), 400, root, before, "zip")


def test_wheel_without_metadata_is_400(
    client: FlaskClient, root: Path, src: Path, before: list[Any]
) -> None:
    fake = src / "up_load-1.0-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("up_load/__init__.py", "")
    assert_refused(post(client, form_for(fake)), 400, root, before, "METADATA")


def _wheel_with_metadata(src: Path, metadata: bytes, compression: int) -> Path:
    path = src / "hostile" / "up_load-1.0-py3-none-any.whl"
    path.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("up_load/__init__.py", "")
        zf.writestr("up_load-1.0.dist-info/METADATA", metadata, compress_type=compression)
    return path


def test_hostile_wheel_archives_are_400(
    client: FlaskClient, root: Path, src: Path, before: list[Any]
) -> None:
    head = b"Metadata-Version: 2.1\nName: up-load\nVersion: 1.0\n"
    # 17 MiB of METADATA deflates to a few kilobytes: under the upload limit, over METADATA's
    bomb = _wheel_with_metadata(src, head + b"\n" + b"a" * (17 << 20), zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 200_000
    assert_refused(post(client, form_for(bomb)), 400, root, before, "METADATA")
    odd = _wheel_with_metadata(src, head, zipfile.ZIP_BZIP2)
    assert_refused(post(client, form_for(odd)), 400, root, before, "compression")


def test_bad_sdists_are_400(
    client: FlaskClient, root: Path, src: Path, before: list[Any]
) -> None:
    cases: list[tuple[Path, str]] = []
    # the name setuptools < 69 writes: not PEP 625
    cases.append((make_sdist(src, "up-load", "1.0", filename="up-load-1.0.tar.gz"), "PEP 625"))
    cases.append((make_sdist(src, "up-load", "1.0", filename="Up_Load-1.0.tar.gz"), "PEP 625"))
    cases.append((make_sdist(src, "up-load", "01.0", filename="up_load-01.0.tar.gz"),
                  "PEP 625"))
    wrong = src / "wrong"
    wrong.mkdir()
    cases.append((renamed(make_sdist(wrong, "someone-else", "1.0"), "up_load-1.0.tar.gz"),
                  "PKG-INFO"))
    cases.append((renamed(make_sdist(wrong, "up-load", "1.0", pkg_version="2.0"),
                          "up_load-1.0.tar.gz"), "PKG-INFO"))
    not_tar = src / "not" / "up_load-1.0.tar.gz"
    not_tar.parent.mkdir()
    not_tar.write_bytes(b"\x1f\x8b but not really gzip")
    cases.append((not_tar, "tar.gz"))
    empty = src / "empty" / "up_load-1.0.tar.gz"
    empty.parent.mkdir()
    with tarfile.open(empty, "w:gz") as tf:
        info = tarfile.TarInfo("up_load-1.0/setup.py")
        tf.addfile(info, io.BytesIO(b""))
    cases.append((empty, "PKG-INFO"))
    for path, word in cases:
        resp = post(client, form_for(path, name=None, version=None))
        assert_refused(resp, 400, root, before, word)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "multipart/form-data", "text/plain"])
def test_not_multipart_is_400(
    client: FlaskClient, root: Path, before: list[Any], content_type: str
) -> None:
    resp = client.post("/legacy/", data=b":action=file_upload", headers=basic(TOKEN),
                       content_type=content_type)
    assert_refused(resp, 400, root, before, "multipart")


def test_two_content_parts_are_400(
    client: FlaskClient, root: Path, src: Path, before: list[Any]
) -> None:
    wheel = make_wheel(src, "up-load", "1.0")
    form = form_for(wheel)
    form["content"] = [(io.BytesIO(wheel.read_bytes()), wheel.name),
                       (io.BytesIO(b"more"), "x.whl")]
    assert_refused(post(client, form), 400, root, before, "more than one")


def test_field_that_is_not_utf8_is_400(
    client: FlaskClient, root: Path, src: Path, before: list[Any]
) -> None:
    wheel = make_wheel(src, "up-load", "1.0")
    bad_part = b'--bnd\r\nContent-Disposition: form-data; name="summary"\r\n\r\n\xff\xfe\r\n'
    resp = client.post("/legacy/", data=bad_part + multipart_body(form_fields(wheel), wheel, "bnd"),
                       headers=basic(TOKEN), content_type="multipart/form-data; boundary=bnd")
    assert_refused(resp, 400, root, before, "UTF-8")


def test_gpg_signature_and_attestations_are_ignored(client: FlaskClient, src: Path) -> None:
    wheel = make_wheel(src, "up-load", "1.0")
    form = form_for(wheel, attestations="[]")
    form["gpg_signature"] = (io.BytesIO(b"-----BEGIN PGP SIGNATURE-----"), wheel.name + ".asc")
    assert post(client, form).status_code == 200


def test_get_of_the_upload_url_is_405(client: FlaskClient) -> None:
    assert client.get("/legacy/").status_code == 405


# == size limits ================================================================================


def test_file_over_the_limit_is_413(
    client: FlaskClient, root: Path, src: Path, before: list[Any]
) -> None:
    # 200,000 bytes is the app's limit; random bytes do not compress.
    big = make_wheel(src, "up-load", "1.0", module_source=f"DATA = {os.urandom(150_000)!r}\n")
    assert big.stat().st_size > 200_000
    assert_refused(post(client, form_for(big)), 413, root, before, "200000")


def test_declared_length_over_the_limit_is_413_before_reading(
    app: Flask, root: Path, before: list[Any]
) -> None:
    class Unreadable(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("the body must not be read")

    environ = create_environ("/legacy/", method="POST", headers=basic(TOKEN),
                             content_type="multipart/form-data; boundary=b")
    environ.update({"wsgi.input": Unreadable(), "CONTENT_LENGTH": str(10 << 30)})
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: object = None) -> Callable[[bytes], object]:
        statuses.append(status)
        return lambda _data: None

    body = b"".join(app.wsgi_app(environ, start_response))
    assert statuses[0].startswith("413"), statuses
    assert b"bytes" in body
    assert stored(root) == before
    assert list((root / "tmp").iterdir()) == []


def test_fields_over_their_limit_are_413(
    client: FlaskClient, root: Path, src: Path, before: list[Any]
) -> None:
    form = form_for(make_wheel(src, "up-load", "1.0"), description="x" * (17 << 20))
    assert_refused(post(client, form), 413, root, before)


# == truncated and malformed bodies =============================================================


def form_fields(path: Path) -> list[tuple[str, str]]:
    data = path.read_bytes()
    project, version = path.name.split("-")[:2]
    return [(":action", "file_upload"), ("protocol_version", "1"), ("name", project),
            ("version", version), ("filetype", "bdist_wheel"), ("sha256_digest", sha256(data))]


def multipart_body(fields: list[tuple[str, str]], path: Path, boundary: str) -> bytes:
    out = bytearray()
    for name, value in fields:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; "
            f"filename=\"{path.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode()
    out += path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out)


def test_every_truncation_is_a_4xx_never_a_500(
    client: FlaskClient, root: Path, src: Path, before: list[Any]
) -> None:
    wheel = make_wheel(src, "up-load", "1.0")
    boundary = "----wheelhouse-test-boundary"
    body = multipart_body(form_fields(wheel), wheel, boundary)
    assert client.post("/legacy/", data=body, headers=basic(TOKEN),
                       content_type=f"multipart/form-data; boundary={boundary}"
                       ).status_code == 200
    after = stored(root)
    # Only the final CRLF after the close delimiter is optional (RFC 2046): any cut before
    # it leaves an incomplete body.
    complete = len(body) - 2
    cuts = sorted({*range(0, complete, max(1, complete // 60)), complete - 1,
                   complete - len(boundary) - 4})
    for cut in cuts:
        resp = client.post("/legacy/", data=body[:cut], headers=basic(TOKEN),
                           content_type=f"multipart/form-data; boundary={boundary}")
        assert 400 <= resp.status_code < 500, (cut, resp.status, resp.get_data(as_text=True))
        assert stored(root) == after
        assert list((root / "tmp").iterdir()) == []
    # garbage of every kind, also never a 500
    for junk in [b"", b"--", b"\r\n\r\n", b"--" + boundary.encode() + b"\r\n\r\n\r\n",
                 b"--" + boundary.encode() + b"\r\nContent-Disposition: form-data\r\n\r\nx",
                 b"--" + boundary.encode() + b"--\r\n", os.urandom(4096)]:
        resp = client.post("/legacy/", data=junk, headers=basic(TOKEN),
                           content_type=f"multipart/form-data; boundary={boundary}")
        assert 400 <= resp.status_code < 500, (junk[:40], resp.status)
    assert stored(root) == after
    assert list((root / "tmp").iterdir()) == []
    assert before != after


# == read tokens ================================================================================


@pytest.fixture(params=[True, False], ids=["hot", "flask"])
def private_client(request: pytest.FixtureRequest, root: Path, src: Path) -> FlaskClient:
    store = Store(root)
    store.publish(make_wheel(src, "secret", "1.0"), origin=Origin.UPLOADED)
    app = create_app(ServerOptions(store=root, upload_token=TOKEN, read_token=READ_TOKEN,
                                   hot_path=request.param))
    return app.test_client()


PRIVATE_URLS = ["/simple/", "/simple/secret/", "/simple/Secret/", "/simple/nope/",
                "/files/secret/secret-1.0-py3-none-any.whl",
                "/files/secret/secret-1.0-py3-none-any.whl.metadata", "/links/"]


@pytest.mark.parametrize("url", PRIVATE_URLS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_read_token_is_needed_to_read(private_client: FlaskClient, url: str,
                                      method: str) -> None:
    for headers in ({}, basic("wrong"), {"Authorization": "Bearer " + READ_TOKEN}):
        resp = private_client.open(url, method=method, headers=headers)
        assert resp.status_code == 401, (url, headers)
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="wheelhouse"'
        assert b"secret-1.0" not in resp.data


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_read_or_upload_token_reads(private_client: FlaskClient, url: str) -> None:
    for token in (READ_TOKEN, TOKEN):
        resp = private_client.get(url, headers=basic(token))
        assert resp.status_code in (200, 301, 404), (url, resp.status)
        assert resp.status_code == (404 if "nope" in url else 301 if "Secret" in url else 200)


def test_private_pages_are_not_for_shared_caches(private_client: FlaskClient) -> None:
    resp = private_client.get("/simple/secret/", headers=basic(READ_TOKEN))
    assert resp.headers["Cache-Control"].startswith("private")


def test_health_stays_open(private_client: FlaskClient) -> None:
    resp = private_client.get("/health")
    assert resp.status_code == 200
    # Without a token it says only that the index is up (issue 9); readers see the rest.
    assert resp.get_json() == {"status": "ok"}
    resp = private_client.get("/health", headers=basic(READ_TOKEN))
    assert resp.get_json()["uploads"] is True


def test_read_token_does_not_grant_uploads(private_client: FlaskClient, src: Path) -> None:
    resp = post(private_client, form_for(make_wheel(src, "more", "1.0")), token=READ_TOKEN)
    assert resp.status_code == 403


@pytest.mark.parametrize("bad", ["", " padded", "line\nbreak"])
def test_unusable_tokens_are_refused_at_start(root: Path, bad: str) -> None:
    with pytest.raises(UsageError):
        create_app(ServerOptions(store=root, upload_token=bad))
    with pytest.raises(UsageError):
        create_app(ServerOptions(store=root, upload_token=TOKEN, read_token=bad))


def test_token_from_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert token_from_file(path) == TOKEN
    path.write_text("  \n")
    with pytest.raises(UsageError, match="empty"):
        token_from_file(path)
    with pytest.raises(UsageError, match="cannot read"):
        token_from_file(tmp_path / "missing")


# == the real server with real clients ==========================================================


class Live:
    def __init__(self, root: Path, port: int, catalogue: str | None = None,
                 store: str | None = None) -> None:
        self.root = root
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.upload_url = f"{self.base}/legacy/"
        self._where = (store or root, catalogue)

    def store(self) -> Store:
        """The store the server writes to: a local one, or a shared one (s3 + PostgreSQL)."""
        return open_store(self._where[0], catalogue=self._where[1], readonly=True)

    @property
    def tmp(self) -> Path:
        """Where uploads are staged (the store's own tmp/, or this machine's staging area
        for a bucket): empty again once every upload ended, however it ended."""
        return self.store().root / "tmp"


def start(root: Path, shared: SharedStore | None = None, **options: Any
          ) -> tuple[Live, Any, threading.Thread]:
    where: dict[str, Any] = {} if shared is None else {"catalogue": shared.catalogue}
    store: Path | str = root if shared is None else shared.store
    server = make_server(local_options(store, threads=4, **where, **options))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return Live(root, server.port, **where, store=None if shared is None else shared.store), \
        server, thread


@pytest.fixture(params=["local", "s3+postgresql"])
def live(request: pytest.FixtureRequest, root: Path) -> Iterator[Live]:
    """The real server on a local store, and on a shared one: the hostile and crash cases of
    uploads hold for both."""
    shared = request.getfixturevalue("shared_store") if request.param != "local" else None
    server_info, server, thread = start(root, shared, upload_token=TOKEN,
                                        max_upload_bytes=200_000)
    try:
        yield server_info
    finally:
        server.shutdown()
        thread.join(timeout=10)


def client_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "TWINE_"))
           and k.lower() not in ("http_proxy", "https_proxy")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", UV_NO_CONFIG="1",
               UV_CACHE_DIR=str(tmp / "uv-cache"), UV_PYTHON_DOWNLOADS="never",
               NO_PROXY="127.0.0.1,localhost", TWINE_NON_INTERACTIVE="1",
               HOME=str(tmp / "home"), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    return env


def twine(tmp: Path, url: str, *args: str, token: str | None = TOKEN
          ) -> subprocess.CompletedProcess[str]:
    creds = ["-u", "__token__", "-p", token] if token is not None else []
    return subprocess.run(
        [sys.executable, "-m", "twine", "upload", "--disable-progress-bar",
         "--repository-url", url, *creds, *args],
        capture_output=True, text=True, env=client_env(tmp), timeout=120,
    )


def uv(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("uv", path=os.path.dirname(sys.executable)) or "uv"
    return subprocess.run([exe, *args], capture_output=True, text=True, env=client_env(tmp),
                          timeout=120)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def build_real_wheel(tmp: Path) -> Path:
    """A wheel built by setuptools (no network: the venv's own setuptools)."""
    proj = tmp / "proj"
    (proj / "wh_real_probe").mkdir(parents=True)
    (proj / "wh_real_probe" / "__init__.py").write_text("VALUE = 'real'\n")
    (proj / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "wh-real-probe"\nversion = "1.0"\ndescription = "probe"\n'
        'requires-python = ">=3.8"\nclassifiers = ["Programming Language :: Python :: 3"]\n'
        '[tool.setuptools]\npackages = ["wh_real_probe"]\n'
    )
    out = tmp / "real-dist"
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--wheel",
                    "--outdir", str(out), str(proj)],
                   check=True, capture_output=True, env=client_env(tmp))
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.mark.slow
def test_twine_upload(live: Live, tmp_path: Path, src: Path) -> None:
    files = [make_wheel(src, "wh-twine-probe", "1.0", requires_python=">=3.8"),
             make_sdist(src, "wh-twine-probe", "1.0", requires_python=">=3.8"),
             build_real_wheel(tmp_path)]
    for url in (live.upload_url, live.upload_url.rstrip("/")):
        result = twine(tmp_path, url, *map(str, files))
        assert result.returncode == 0, result.stdout + result.stderr
    # visible at once, with what the client sent
    status, body = fetch(f"{live.base}/simple/wh-twine-probe/", {"Accept": JSON})
    assert status == 200
    page = json.loads(body)
    assert {f["filename"] for f in page["files"]} == {files[0].name, files[1].name}
    assert all(f["requires-python"] == ">=3.8" for f in page["files"])
    assert fetch(f"{live.base}/simple/wh-real-probe/")[0] == 200
    for f in files[:2]:
        status, data = fetch(f"{live.base}/files/wh-twine-probe/{f.name}")
        assert (status, data) == (200, f.read_bytes())


@pytest.mark.slow
def test_twine_wrong_or_missing_token_stores_nothing(live: Live, tmp_path: Path,
                                                     src: Path) -> None:
    wheel = make_wheel(src, "wh-twine-probe", "1.0")
    result = twine(tmp_path, live.upload_url, str(wheel), token="wrong")
    assert result.returncode != 0
    assert "403" in result.stdout + result.stderr
    # twine will not send an empty password; a bare request shows the 401 a client meets
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    body = multipart_body(form_fields(wheel), wheel, "bnd")
    conn.request("POST", "/legacy/", body=body,
                 headers={"Content-Type": "multipart/form-data; boundary=bnd"})
    resp = conn.getresponse()
    assert resp.status == 401
    assert resp.getheader("WWW-Authenticate") == 'Basic realm="wheelhouse"'
    conn.close()
    assert live.store().files() == []
    assert list(live.tmp.iterdir()) == []


@pytest.mark.slow
def test_twine_reupload_and_changed_bytes(live: Live, tmp_path: Path, src: Path) -> None:
    wheel = make_wheel(src, "wh-twine-probe", "1.0")
    original = wheel.read_bytes()
    assert twine(tmp_path, live.upload_url, str(wheel)).returncode == 0
    # Re-running an upload (what --skip-existing is for) succeeds: same bytes are a no-op.
    again = twine(tmp_path, live.upload_url, str(wheel))
    assert again.returncode == 0, again.stdout + again.stderr
    changed = changed_wheel(tmp_path, wheel)
    refused = twine(tmp_path, live.upload_url, str(changed))
    assert refused.returncode != 0
    assert "409" in refused.stdout + refused.stderr
    assert "File already exists" in refused.stdout + refused.stderr
    status, data = fetch(f"{live.base}/files/wh-twine-probe/{wheel.name}")
    assert (status, data) == (200, original)
    assert [f.sha256 for f in live.store().files()] == [sha256(original)]


def changed_wheel(tmp: Path, wheel: Path) -> Path:
    """A wheel with the same filename as ``wheel`` and other bytes."""
    directory = tmp / "changed"
    directory.mkdir(exist_ok=True)
    project, version = wheel.name.split("-")[:2]
    changed = make_wheel(directory, project, version, module_source="CHANGED = 2\n")
    assert changed.name == wheel.name and changed.read_bytes() != wheel.read_bytes()
    return changed


@pytest.mark.slow
def test_our_409_is_what_twine_skip_existing_skips(live: Live, tmp_path: Path,
                                                   src: Path) -> None:
    from twine.commands.upload import skip_upload

    wheel = make_wheel(src, "wh-twine-probe", "1.0")
    assert twine(tmp_path, live.upload_url, str(wheel)).returncode == 0
    changed = changed_wheel(tmp_path, wheel)
    fields = dict(form_fields(changed))
    resp = requests.post(live.upload_url, auth=("__token__", TOKEN), data=fields,
                         files={"content": (changed.name, changed.read_bytes())}, timeout=10)
    assert resp.status_code == 409
    assert skip_upload(resp, True, None)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.network
def test_twine_skip_existing(live: Live, tmp_path: Path, src: Path) -> None:
    """twine >= 6.2 accepts --skip-existing only for PyPI and TestPyPI ("unsupported
    configuration"), so this runs twine 6.1, the last that honours it for any index, on the
    dependencies twine 7 already installed."""
    target = tmp_path / "twine61"
    got = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--target",
         str(target), "twine==6.1.0"],
        capture_output=True, text=True, env=client_env(tmp_path), timeout=300,
    )
    if got.returncode != 0:
        pytest.skip(f"cannot download twine 6.1.0: {got.stderr[-500:]}")
    env = {**client_env(tmp_path), "PYTHONPATH": str(target)}

    def twine61(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "twine", "upload", "--disable-progress-bar",
             "--repository-url", live.upload_url, "-u", "__token__", "-p", TOKEN, *args],
            capture_output=True, text=True, env=env, timeout=120,
        )

    version = subprocess.run([sys.executable, "-m", "twine", "--version"], env=env,
                             capture_output=True, text=True, check=True).stdout
    assert "twine version 6.1.0" in version
    wheel = make_wheel(src, "wh-twine-probe", "1.0")
    original = wheel.read_bytes()
    for _ in range(2):
        result = twine61("--skip-existing", str(wheel))
        assert result.returncode == 0, result.stdout + result.stderr
    skipped = twine61("--skip-existing", str(changed_wheel(tmp_path, wheel)))
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "Skipping" in skipped.stdout + skipped.stderr
    status, data = fetch(f"{live.base}/files/wh-twine-probe/{wheel.name}")
    assert (status, data) == (200, original)


@pytest.mark.slow
def test_twine_upload_over_the_limit_is_413(live: Live, tmp_path: Path, src: Path) -> None:
    big = make_wheel(src, "wh-twine-probe", "1.0",
                     module_source=f"DATA = {os.urandom(300_000)!r}\n")
    result = twine(tmp_path, live.upload_url, str(big))
    assert result.returncode != 0
    assert "413" in result.stdout + result.stderr
    assert live.store().files() == []
    assert list(live.tmp.iterdir()) == []


@pytest.mark.slow
def test_uv_publish(live: Live, tmp_path: Path, src: Path) -> None:
    wheel = make_wheel(src, "wh-uv-probe", "1.0")
    sdist = make_sdist(src, "wh-uv-probe", "1.0")
    for url in (live.upload_url, live.upload_url.rstrip("/")):
        result = uv(tmp_path, "publish", "--publish-url", url, "--token", TOKEN,
                    "--trusted-publishing", "never", str(wheel), str(sdist))
        assert result.returncode == 0, result.stdout + result.stderr
    assert {f.filename for f in live.store().files()} == {wheel.name, sdist.name}
    wrong = uv(tmp_path, "publish", "--publish-url", live.upload_url, "--token", "wrong",
               "--trusted-publishing", "never", str(make_wheel(src, "wh-uv-probe", "2.0")))
    assert wrong.returncode != 0
    assert "403" in wrong.stdout + wrong.stderr
    assert len(live.store().files()) == 2
    status, body = fetch(f"{live.base}/simple/wh-uv-probe/", {"Accept": JSON})
    assert status == 200 and len(json.loads(body)["files"]) == 2


def _raw_upload(port: int, head: bytes, body: bytes, *, half_close: bool) -> tuple[int, str]:
    """Send a request by hand; optionally stop sending early (shutdown of our write side)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), rest.decode("utf-8", "replace")


@pytest.mark.slow
def test_truncated_bodies_on_the_real_server(live: Live, src: Path) -> None:
    wheel = make_wheel(src, "wh-cut-probe", "1.0")
    body = multipart_body(form_fields(wheel), wheel, "bnd")
    auth = basic(TOKEN)["Authorization"]

    def head(length: int) -> bytes:
        return (f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
                "Content-Type: multipart/form-data; boundary=bnd\r\n"
                f"Content-Length: {length}\r\n\r\n").encode()

    cut = body[: len(body) // 2]
    # the connection ends before Content-Length bytes arrived
    status, text = _raw_upload(live.port, head(len(body)), cut, half_close=True)
    assert status == 400 and "cut off" in text
    # Content-Length is honest, but the multipart inside it is cut
    status, text = _raw_upload(live.port, head(len(cut)), cut, half_close=False)
    assert status == 400 and "cut off" in text
    # a huge declared length: refused before reading, and the client still sees the answer
    status, text = _raw_upload(live.port, head(50 << 30), body[:1000], half_close=False)
    assert status == 413
    # and the same with http.client, the way a script would do it
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    conn.putrequest("POST", "/legacy/")
    conn.putheader("Authorization", auth)
    conn.putheader("Content-Type", "multipart/form-data; boundary=bnd")
    conn.putheader("Content-Length", str(len(cut)))
    conn.endheaders(cut)
    resp = conn.getresponse()
    assert resp.status == 400 and b"cut off" in resp.read()
    conn.close()
    assert live.store().files() == []
    assert list(live.tmp.iterdir()) == []


@pytest.mark.slow
def test_pip_with_a_read_token(root: Path, tmp_path: Path, src: Path) -> None:
    Store(root).publish(make_wheel(src, "wh-private-probe", "1.0"), origin=Origin.UPLOADED)
    info, server, thread = start(root, read_token=READ_TOKEN)
    try:
        env = client_env(tmp_path)
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)

        def pip(index: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                 "install", "--no-cache-dir", "--no-input", "--index-url", index,
                 "wh-private-probe"],
                capture_output=True, text=True, env=env, timeout=120,
            )

        # without the token pip gets a 401 and, unable to prompt, finds nothing
        refused = pip(f"{info.base}/simple/")
        assert refused.returncode != 0
        allowed = pip(f"http://__token__:{READ_TOKEN}@127.0.0.1:{info.port}/simple/")
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    finally:
        server.shutdown()
        thread.join(timeout=10)
