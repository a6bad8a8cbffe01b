"""What an upload may not do (issue 9): shadow a published release under another spelling,
version or build tag, carry another release's metadata or a damaged archive, or hold the
server's threads. Through the Flask test client; tests/test_hostile_clients.py has the rest
against the real server."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import SharedStore
from tests.corpus import _damaged, evil, original
from tests.distributions import wheel_bytes
from tests.test_upload import TOKEN, form_for, post
from wheelhouse.errors import Stalled
from wheelhouse.options import ServerOptions
from wheelhouse.server.app import create_app
from wheelhouse.server.bodies import PacedReader, UploadSlots
from wheelhouse.store.backends import open_store
from wheelhouse.store.store import Store

JSON = "application/vnd.pypi.simple.v1+json"
CLICK = "click-8.1.7-py3-none-any.whl"


#: the catalogue of each shared store a test runs against, by its s3:// URL.
_CATALOGUES: dict[str, str] = {}


def app_for(root: Path | str, **options: Any) -> Flask:
    return create_app(ServerOptions(store=root, upload_token=TOKEN,
                                    catalogue=_CATALOGUES.get(str(root)), **options))


def write(directory: Path, filename: str, data: bytes) -> Path:
    path = directory / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(params=["local", "s3+postgresql"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A local store, or a shared one (its s3:// URL): issue 9's limits hold for both."""
    if request.param == "local":
        return tmp_path / "store"
    shared: SharedStore = request.getfixturevalue("shared_store")
    _CATALOGUES[shared.store] = shared.catalogue
    return shared.store


@pytest.fixture
def client(root: Path | str, tmp_path: Path) -> FlaskClient:
    client = app_for(root).test_client()
    resp = post(client, form_for(write(tmp_path / "orig", CLICK, original())))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return client


def files(root: Path | str) -> dict[str, str]:
    store = open_store(root, catalogue=_CATALOGUES.get(str(root)), readonly=True)
    return {f.filename: f.sha256 for f in store.files()}


@pytest.mark.parametrize(("filename", "version", "status"), [
    ("Click-8.1.7-py3-none-any.whl", "8.1.7", 409),
    ("click-8.1.7.0-py3-none-any.whl", "8.1.7.0", 409),
    ("click-v8.1.7-py3-none-any.whl", "v8.1.7", 409),
    ("click-8.1.7-1-py3-none-any.whl", "8.1.7", 400),
    ("click-8.1.7+evil-py3-none-any.whl", "8.1.7+evil", 400),
    (CLICK, "8.1.7", 409),
])
def test_look_alikes_of_a_published_release_are_refused(
    client: FlaskClient, root: Path | str, tmp_path: Path, filename: str, version: str,
    status: int,
) -> None:
    before = files(root)
    resp = post(client, form_for(write(tmp_path / "evil", filename, evil(version)),
                                 name=None, version=None))
    body = resp.get_data(as_text=True)
    assert resp.status_code == status, body
    if status == 409:
        assert resp.status == "409 File already exists" and CLICK in body
    assert files(root) == before


def test_the_same_bytes_under_another_spelling_change_nothing(
    client: FlaskClient, root: Path | str, tmp_path: Path
) -> None:
    before = files(root)
    resp = post(client, form_for(write(tmp_path / "same", "Click-8.1.7-py3-none-any.whl",
                                       original()), name=None, version=None))
    assert resp.status_code == 200 and "already published" in resp.get_data(as_text=True)
    assert files(root) == before


def test_local_versions_and_build_tags_only_when_allowed(root: Path | str,
                                                         tmp_path: Path) -> None:
    local = write(tmp_path, "wh_x-1.0+abc-py3-none-any.whl", wheel_bytes("wh-x", "1.0+abc"))
    tagged = write(tmp_path, "wh_y-1.0-2-py3-none-any.whl", wheel_bytes("wh-y", "1.0"))
    strict = app_for(root).test_client()
    resp = post(strict, form_for(local, name=None, version=None))
    assert resp.status_code == 400 and "--allow-local-versions" in resp.get_data(as_text=True)
    resp = post(strict, form_for(tagged, name=None, version=None))
    assert resp.status_code == 400 and "--allow-build-tags" in resp.get_data(as_text=True)
    lenient = app_for(root, allow_local_versions=True, allow_build_tags=True).test_client()
    for wheel in (local, tagged):
        resp = post(lenient, form_for(wheel, name=None, version=None))
        assert resp.status_code == 200, resp.get_data(as_text=True)
    # allowed, a build tag still cannot shadow a file of the same release
    other = write(tmp_path / "o", "wh_y-1.0-3-py3-none-any.whl",
                  wheel_bytes("wh-y", "1.0", module_source="OTHER = 1\n"))
    assert post(lenient, form_for(other, name=None, version=None)).status_code == 409


def test_metadata_folder_of_another_release_is_400(client: FlaskClient, root: Path | str,
                                                   tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("click-9.9.dist-info/METADATA", "Metadata-Version: 2.1\nName: click\n"
                    "Version: 8.1.7\n")
    resp = post(client, form_for(write(tmp_path / "f", "click-8.1.7-py3-none-any.whl",
                                       buf.getvalue())))
    assert resp.status_code in (400, 409)
    resp = post(client, form_for(write(tmp_path / "g", "wh_z-1.0-py3-none-any.whl",
                                       _rename_folder(wheel_bytes("wh-z", "1.0")))))
    assert resp.status_code == 400 and "click-9.9.dist-info" in resp.get_data(as_text=True)


def _rename_folder(data: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info in src.infolist():
            zf.writestr(info.filename.replace("wh_z-1.0.dist-info", "click-9.9.dist-info"),
                        src.read(info))
    return buf.getvalue()


def test_a_damaged_member_anywhere_in_the_wheel_is_400(client: FlaskClient, root: Path | str,
                                                       tmp_path: Path) -> None:
    damaged = _damaged(wheel_bytes("wh-crc", "1.0"), "wh_crc/__init__.py")
    resp = post(client, form_for(write(tmp_path, "wh_crc-1.0-py3-none-any.whl", damaged)))
    assert resp.status_code == 400 and "damaged" in resp.get_data(as_text=True)


def test_uploads_beyond_the_slots_get_503_with_retry_after(root: Path | str,
                                                           tmp_path: Path) -> None:
    app = app_for(root, upload_slots=1)
    slots: UploadSlots = app.extensions["wheelhouse"].uploads.slots
    assert slots.take()  # another upload is being read
    try:
        resp = post(app.test_client(), form_for(write(tmp_path, "wh_q-1.0-py3-none-any.whl",
                                                      wheel_bytes("wh-q", "1.0"))))
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
        assert files(root) == {}
    finally:
        slots.give()
    resp = post(app.test_client(), form_for(tmp_path / "wh_q-1.0-py3-none-any.whl"))
    assert resp.status_code == 200


def test_a_block_slower_than_the_pace_stalls_the_upload() -> None:
    class Slow(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            time.sleep(0.3)
            return super().read(size)

    reader = PacedReader(Slow(b"x" * 10), stall_timeout=0.1)
    with pytest.raises(Stalled):
        reader.read(5)
    assert PacedReader(io.BytesIO(b"abc"), stall_timeout=0.1).read(5) == b"abc"


def test_publish_waits_out_busy_slots(root: Path | str, tmp_path: Path) -> None:
    """A runner's `--publish` meets 503 while other runners' uploads hold the slots: it comes
    back after Retry-After instead of failing."""
    import threading

    from wheelhouse.publish.remote import publish_missing
    from wheelhouse.server.serving import IndexServer, bind_socket
    from wheelhouse.store.model import Origin

    app = app_for(root, upload_slots=1)
    server = IndexServer(app, bind_socket("127.0.0.1", 0), threads=4, access_log=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    builder = Store(tmp_path / "builder")
    wheel = write(tmp_path / "b", "wh_busy-1.0-py3-none-any.whl", wheel_bytes("wh-busy", "1.0"))
    builder.publish(wheel, origin=Origin.BUILT)
    slots: UploadSlots = app.extensions["wheelhouse"].uploads.slots
    assert slots.take()
    threading.Timer(1.0, slots.give).start()  # another runner's upload ends in a second
    try:
        report = publish_missing(builder, [wheel.name], server.upload_url, TOKEN,
                                 report=lambda line: None)
        assert report.uploaded == (wheel.name,)
    finally:
        server.shutdown()
        thread.join(10)
