"""A shared store for real: the bytes in an S3 bucket (SeaweedFS), the catalogue and the build
ledger in PostgreSQL, both started by the session fixtures (tests/services.py). No mocks.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import SharedStore, free_port, wheelhouse
from tests.distributions import write_wheel
from wheelhouse.bucket_export import export_to_bucket
from wheelhouse.errors import PublishConflict, SchemaTooNew, StoreError, UsageError
from wheelhouse.ledger import Failure, open_ledger
from wheelhouse.store.backends import open_store
from wheelhouse.store.model import Origin, PublishStatus
from wheelhouse.store.store import Store


def test_publish_puts_the_bytes_in_the_bucket_and_lists_them(
        shared_store: SharedStore, tmp_path: Path) -> None:
    store = open_store(shared_store.store, catalogue=shared_store.catalogue)
    wheel = write_wheel(tmp_path, "demo", "1.0")
    got = store.publish(wheel, origin=Origin.UPLOADED)
    assert got.status is PublishStatus.PUBLISHED
    keys = shared_store.s3.keys(shared_store.bucket)
    assert sorted(keys) == [f"index/files/demo/{wheel.name}",
                            f"index/files/demo/{wheel.name}.metadata"]
    # Another process (here: another Store) sees it through the catalogue alone.
    reader = open_store(shared_store.store, catalogue=shared_store.catalogue, readonly=True)
    f = reader.get(wheel.name)
    assert f is not None and f.sha256 == got.file.sha256
    assert reader.read_metadata(f) is not None
    # Nothing of the store stays on this machine ...
    assert not list(Path(store.root).rglob(wheel.name))
    # ... but a checked copy asked for (a build installing its dependencies).
    assert reader.local_file(f).read_bytes() == wheel.read_bytes()
    assert store.publish(wheel, origin=Origin.UPLOADED).status is PublishStatus.IDENTICAL


def test_other_bytes_under_a_published_name_are_refused_and_the_object_kept(
        shared_store: SharedStore, tmp_path: Path) -> None:
    store = open_store(shared_store.store, catalogue=shared_store.catalogue)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_wheel(tmp_path / "a", "demo", "1.0")
    store.publish(first, origin=Origin.UPLOADED)
    other = write_wheel(tmp_path / "b", "demo", "1.0", module_source="x = 1\n")
    with pytest.raises(PublishConflict):
        store.publish(other, origin=Origin.UPLOADED)
    client = shared_store.s3.client()
    body = client.get_object(Bucket=shared_store.bucket,
                             Key=f"index/files/demo/{first.name}")["Body"].read()
    assert body == first.read_bytes()


def test_an_unlisted_object_left_by_a_dead_publisher_is_replaced(
        shared_store: SharedStore, tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, "demo", "2.0")
    client = shared_store.s3.client()
    key = f"index/files/demo/{wheel.name}"
    client.put_object(Bucket=shared_store.bucket, Key=key, Body=b"torn")  # no row lists it
    store = open_store(shared_store.store, catalogue=shared_store.catalogue)
    assert store.publish(wheel, origin=Origin.UPLOADED).status is PublishStatus.PUBLISHED
    assert client.get_object(Bucket=shared_store.bucket, Key=key)["Body"].read() == \
        wheel.read_bytes()


def test_concurrent_publishers_of_one_file_publish_it_once(
        shared_store: SharedStore, tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, "race", "1.0")
    results: list[PublishStatus] = []
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            store = open_store(shared_store.store, catalogue=shared_store.catalogue)
            results.append(store.publish(wheel, origin=Origin.BUILT).status)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [PublishStatus.IDENTICAL] * 3 + [PublishStatus.PUBLISHED]
    reader = open_store(shared_store.store, catalogue=shared_store.catalogue, readonly=True)
    assert [f.filename for f in reader.files()] == [wheel.name]


def test_the_ledger_lives_in_postgresql_with_advisory_build_locks(
        shared_store: SharedStore, tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path, catalogue=shared_store.catalogue)
    failure = Failure(key="k", project="p", version="1", target="t", message="m", log=None,
                      time="now", cause=("why",), hint="do")
    ledger.record_failure(failure)
    ledger.record_failure(failure)  # replaced, not duplicated
    assert open_ledger(tmp_path, catalogue=shared_store.catalogue).failures() == [failure]
    ledger.cache_put("plan", {"a": 1})
    assert ledger.cache_get("plan") == {"a": 1}
    order: list[str] = []
    with ledger.build_lock("p", "1", "t"):
        other = threading.Thread(target=lambda: _locked(ledger, order))
        other.start()
        other.join(0.5)
        order.append("first done")
    other.join()
    assert order == ["first done", "second"]


def _locked(ledger: object, order: list[str]) -> None:
    with ledger.build_lock("p", "1", "t"):  # type: ignore[attr-defined]
        order.append("second")


def test_a_newer_schema_is_refused_with_its_own_exit_status(
        shared_store: SharedStore) -> None:
    open_store(shared_store.store, catalogue=shared_store.catalogue)
    with psycopg.connect(shared_store.catalogue, autocommit=True) as conn:
        conn.execute("UPDATE wheelhouse_schema SET version = 99 WHERE component='catalogue'")
    with pytest.raises(SchemaTooNew, match="schema version 99"):
        open_store(shared_store.store, catalogue=shared_store.catalogue, readonly=True)
    done = wheelhouse("list", *shared_store.args(), env=shared_store.env)
    assert done.returncode == 10, done.stderr
    assert "upgrade wheelhouse" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("case", ["no bucket", "no postgres", "no catalogue", "bad url"])
def test_bad_locations_are_one_line_errors(shared_store: SharedStore, case: str) -> None:
    store, catalogue = shared_store.store, shared_store.catalogue
    open_store(store, catalogue=catalogue)  # the catalogue exists: only the case is wrong
    if case == "no bucket":
        store = "s3://no-such-bucket-here/x"
    elif case == "no postgres":
        catalogue = "postgresql://nobody:secret@127.0.0.1:1/none"
    args = ["list", "--store", store]
    if case != "no catalogue":
        args += ["--catalogue", "mysql://x" if case == "bad url" else catalogue]
    done = wheelhouse(*args, env=shared_store.env, timeout=120)
    assert "Traceback" not in done.stderr
    first = done.stderr.strip().splitlines()[0]
    if case == "no bucket":
        assert done.returncode == 5 and "no-such-bucket-here" in first
    elif case == "no postgres":
        assert done.returncode == 5 and "127.0.0.1:1" in first and "secret" not in done.stderr
    else:
        assert done.returncode == 2, done.stderr
    if case == "no catalogue":
        catalogue = None  # type: ignore[assignment]
    elif case == "bad url":
        catalogue = "mysql://x"
    with pytest.raises((StoreError, UsageError)):
        open_store(store, catalogue=catalogue, readonly=True)


def _app(shared: SharedStore, **options: object) -> Any:
    from wheelhouse.options import ServerOptions
    from wheelhouse.server.app import create_app

    return create_app(ServerOptions(store=shared.store, catalogue=shared.catalogue,
                                    **options))  # type: ignore[arg-type]


@pytest.mark.parametrize("hot_path", [True, False])
def test_downloads_stream_from_the_bucket_with_ranges_and_validators(
        shared_store: SharedStore, tmp_path: Path, hot_path: bool) -> None:
    store = open_store(shared_store.store, catalogue=shared_store.catalogue)
    # Larger than the in-memory limit (1 MiB): streamed from the bucket per request.
    noise = base64.b85encode(os.urandom(1_400_000)).decode()
    big = write_wheel(tmp_path, "big", "1.0", module_source=f"X = {noise!r}\n")
    small = write_wheel(tmp_path, "small", "1.0")
    for wheel in (big, small):
        store.publish(wheel, origin=Origin.UPLOADED)
    client = _app(shared_store, hot_path=hot_path).test_client()
    for wheel, project in ((big, "big"), (small, "small")):
        data = wheel.read_bytes()
        got = client.get(f"/files/{project}/{wheel.name}")
        assert got.status_code == 200 and got.data == data
        assert got.headers["Content-Length"] == str(len(data))
        etag = got.headers["ETag"]
        assert client.get(f"/files/{project}/{wheel.name}",
                          headers={"If-None-Match": etag}).status_code == 304
        part = client.get(f"/files/{project}/{wheel.name}", headers={"Range": "bytes=10-99"})
        assert part.status_code == 206 and part.data == data[10:100]
    meta = client.get(f"/files/small/{small.name}.metadata")
    assert meta.status_code == 200 and b"Name: small" in meta.data
    # Another replica's answer carries the same validators: they come from the catalogue.
    other = _app(shared_store, hot_path=hot_path).test_client()
    assert other.head(f"/files/big/{big.name}").headers["ETag"] == client.head(
        f"/files/big/{big.name}").headers["ETag"]


def test_presigned_redirects_when_asked(shared_store: SharedStore, tmp_path: Path) -> None:
    store = open_store(shared_store.store, catalogue=shared_store.catalogue)
    wheel = write_wheel(tmp_path, "signed", "1.0")
    store.publish(wheel, origin=Origin.UPLOADED)
    client = _app(shared_store, presign_downloads=True).test_client()
    got = client.get(f"/files/signed/{wheel.name}")
    assert got.status_code == 302
    location = got.headers["Location"]
    assert location.startswith(shared_store.s3.endpoint + "/")
    with urllib.request.urlopen(location, timeout=10) as resp:
        assert resp.read() == wheel.read_bytes()
    # Signed for the bucket's public name, not the endpoint the replicas use.
    public = "http://localhost:" + shared_store.s3.endpoint.rsplit(":", 1)[1]
    client = _app(shared_store, presign_downloads=True,
                  presign_endpoint=public).test_client()
    location = client.get(f"/files/signed/{wheel.name}").headers["Location"]
    assert location.startswith(public + "/")
    with urllib.request.urlopen(location, timeout=10) as resp:
        assert resp.read() == wheel.read_bytes()
    with pytest.raises(UsageError, match="presign_endpoint"):
        _app(shared_store, presign_downloads=True, presign_endpoint="s3.example.com")


def test_health_reports_the_database_and_the_bucket(shared_store: SharedStore) -> None:
    open_store(shared_store.store, catalogue=shared_store.catalogue)
    client = _app(shared_store).test_client()
    got = client.get("/health").get_json()
    assert (got["status"], got["database"], got["bucket"]) == ("ok", "ok", "ok")
    shared_store.s3.client().delete_bucket(Bucket=shared_store.bucket)
    got = client.get("/health")
    assert got.status_code == 503
    assert (got.get_json()["status"], got.get_json()["bucket"]) == ("degraded", "down")


def test_export_to_a_bucket_is_incremental_and_installable(
        shared_store: SharedStore, tmp_path: Path) -> None:
    local = tmp_path / "store"
    store = Store(local)
    dist = tmp_path / "dist"
    dist.mkdir()
    store.publish(write_wheel(dist, "wh-cdn", "1.0"), origin=Origin.UPLOADED)
    target = f"s3://{shared_store.s3.new_bucket()}/cdn"
    first = wheelhouse("export", "--store", str(local), target, env=shared_store.env)
    assert first.returncode == 0, first.stderr
    assert "written" in first.stdout
    bucket = target[len("s3://"):].split("/")[0]
    keys = set(shared_store.s3.keys(bucket))
    assert {"cdn/files/wh-cdn/wh_cdn-1.0-py3-none-any.whl",
            "cdn/files/wh-cdn/wh_cdn-1.0-py3-none-any.whl.metadata",
            "cdn/simple/wh-cdn/index.html", "cdn/simple/wh-cdn/index.json",
            "cdn/simple/index.html", "cdn/simple/index.json", "cdn/links/index.html",
            "cdn/.wheelhouse-export.json"} == keys
    again = export_to_bucket(Store(local, readonly=True), target)
    assert (again.put, again.files) == (0, 1)
    store.publish(write_wheel(dist, "wh-cdn", "1.1"), origin=Origin.UPLOADED)
    grown = export_to_bucket(Store(local, readonly=True), target)
    # the new file and its metadata, the project's two pages and the flat links page
    assert grown.put == 5
    # What a CDN would serve: the bucket's own URLs, pages linking to files beside them.
    links = f"{shared_store.s3.endpoint}/{bucket}/cdn/links/index.html"
    got = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-index",
         "--target", str(tmp_path / "t"), "--find-links", links, "wh-cdn==1.1"],
        capture_output=True, text=True, env=shared_store.env, timeout=120)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "VERSION = '1.1'" in (tmp_path / "t" / "wh_cdn" / "__init__.py").read_text()


def test_gc_and_a_directory_export_of_a_shared_store_say_they_cannot(
        shared_store: SharedStore, tmp_path: Path) -> None:
    for args in (["gc"], ["export", str(tmp_path / "out")]):
        done = wheelhouse(*args, *shared_store.args(), env=shared_store.env)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "shared store" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_local_directory_with_its_catalogue_in_postgresql(
        shared_store: SharedStore, tmp_path: Path) -> None:
    """Files on a shared filesystem, the catalogue in PostgreSQL: the bytes stay in the
    directory (no SQLite file is made), replicas still learn of changes by the generation."""
    root = tmp_path / "store"
    store = open_store(root, catalogue=shared_store.catalogue)
    wheel = write_wheel(tmp_path, "onnfs", "1.0")
    published = store.publish(wheel, origin=Origin.UPLOADED).file
    assert store.file_path(published).read_bytes() == wheel.read_bytes()
    assert not (root / "catalogue.sqlite3").exists()
    reader = open_store(root, catalogue=shared_store.catalogue, readonly=True)
    assert reader.read_metadata(published) is not None
    assert reader.change_token() == reader.generation() == 1


def test_migrations_apply_once_in_order_and_record_their_version(
        shared_store: SharedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from wheelhouse.store import pg

    open_store(shared_store.store, catalogue=shared_store.catalogue)
    # The next release's migration: applied once at the next start, by whoever starts first.
    later = (*pg.MIGRATIONS["catalogue"], "ALTER TABLE files ADD COLUMN note TEXT;")
    monkeypatch.setitem(pg.MIGRATIONS, "catalogue", later)
    for _ in range(2):
        open_store(shared_store.store, catalogue=shared_store.catalogue)
    with psycopg.connect(shared_store.catalogue) as conn:
        version = conn.execute("SELECT version FROM wheelhouse_schema "
                               "WHERE component = 'catalogue'").fetchone()
        columns = conn.execute("SELECT count(*) FROM information_schema.columns "
                               "WHERE table_name = 'files' AND column_name = 'note'").fetchone()
    assert version == (2,) and columns == (1,)


def test_serve_with_an_unreachable_catalogue_fails_before_any_worker(
        shared_store: SharedStore) -> None:
    done = wheelhouse("serve", "--store", shared_store.store, "--catalogue",
                      "postgresql://wheelhouse:pw@127.0.0.1:1/db", "--port", str(free_port()),
                      env=shared_store.env, timeout=120)
    assert done.returncode == 5, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "127.0.0.1:1" in done.stderr and "pw" not in done.stderr.replace("pwd", "")
