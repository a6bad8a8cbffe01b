from __future__ import annotations

import hashlib
import multiprocessing
import time
import zipfile
from pathlib import Path

import pytest

from wheelhouse.errors import InvalidDistribution, PublishConflict, StoreError
from wheelhouse.store.model import Origin, PublishStatus
from wheelhouse.store.store import Store


def make_wheel(path: Path, name: str = "demo", version: str = "1.0", extra: str = "",
               meta_name: str | None = None, requires_python: str | None = ">=3.8") -> Path:
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {meta_name or name}\nVersion: {version}\n"
    if requires_python:
        meta += f"Requires-Python: {requires_python}\n"
    meta += "Requires-Dist: six>=1\n"
    wheel = path / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{name}/__init__.py", f"# {extra}\n")
        zf.writestr(f"{dist}/METADATA", meta)
        zf.writestr(f"{dist}/WHEEL",
                    "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return wheel


def test_publish_records_everything_the_index_needs(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    wheel = make_wheel(tmp_path)
    result = store.publish(wheel, origin=Origin.BUILT, provenance={"sdist_sha256": "x"})
    f = result.file
    assert result.status is PublishStatus.PUBLISHED
    assert f.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert f.size == wheel.stat().st_size and f.upload_time.endswith("Z")
    assert f.requires_python == ">=3.8" and f.origin is Origin.BUILT
    meta = store.metadata_path(f).read_bytes()
    assert b"Name: demo" in meta and hashlib.sha256(meta).hexdigest() == f.metadata_sha256
    assert store.file_path(f).read_bytes() == wheel.read_bytes()
    assert wheel.exists(), "publish copies unless asked to consume"
    assert [x.filename for x in Store(tmp_path / "store", readonly=True).files("DEMO")] == [
        wheel.name]
    assert store.generation() == 1


def test_same_bytes_is_a_no_op_and_different_bytes_conflict(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    wheel = make_wheel(tmp_path)
    first = store.publish(wheel, origin=Origin.UPLOADED).file
    assert store.publish(wheel, origin=Origin.UPLOADED).status is PublishStatus.IDENTICAL
    other = tmp_path / "other"
    other.mkdir()
    changed = make_wheel(other, extra="different")
    with pytest.raises(PublishConflict):
        store.publish(changed, origin=Origin.UPLOADED)
    assert store.file_path(first).read_bytes() == wheel.read_bytes()
    assert store.generation() == 1
    assert not list((tmp_path / "store" / "tmp").iterdir()), "no staging debris"


def test_invalid_distributions_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    liar = make_wheel(tmp_path, meta_name="someone-else")
    with pytest.raises(InvalidDistribution, match="METADATA names project"):
        store.publish(liar, origin=Origin.UPLOADED)
    junk = tmp_path / "junk-1.0-py3-none-any.whl"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InvalidDistribution, match="zip"):
        store.publish(junk, origin=Origin.UPLOADED)
    with pytest.raises(InvalidDistribution):
        store.publish(make_wheel(tmp_path), filename="../evil-1.0-py3-none-any.whl",
                      origin=Origin.UPLOADED)
    wrong_hash = make_wheel(tmp_path)
    with pytest.raises(InvalidDistribution, match="sha256"):
        store.publish(wrong_hash, origin=Origin.UPSTREAM, expected_sha256="0" * 64)
    assert store.files() == []
    assert not list((tmp_path / "store" / "tmp").iterdir())
    assert not any((tmp_path / "store" / "files").rglob("*.whl"))


def test_yank_keeps_bytes(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    f = store.publish(make_wheel(tmp_path), origin=Origin.UPLOADED).file
    store.set_yanked(f.filename, "broken")
    assert store.get(f.filename).yanked == "broken"  # type: ignore[union-attr]
    with pytest.raises(StoreError):
        store.set_yanked("nope-1.0-py3-none-any.whl", "")


def test_unwritable_store_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError) as e:
        Store(blocker / "store")
    assert "--store" in (e.value.hint or "")
    with pytest.raises(StoreError, match="no wheelhouse store"):
        Store(tmp_path / "missing", readonly=True)


def _publish_many(root: str, wheel_dir: str, n: int) -> None:
    store = Store(Path(root))
    for i in range(n):
        store.publish(Path(wheel_dir) / f"p{i}-1.0-py3-none-any.whl", origin=Origin.UPSTREAM)


def test_concurrent_publishers_agree(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for i in range(20):
        make_wheel(wheels, name=f"p{i}")
    root = tmp_path / "store"
    Store(root)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_publish_many, args=(str(root), str(wheels), 20))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = Store(root, readonly=True)
    assert len(store.files()) == 20 and store.generation() == 20
    for f in store.files():
        assert hashlib.sha256(store.file_path(f).read_bytes()).hexdigest() == f.sha256


# == issue 9: identity, crash debris, the change marker =========================================


def _wheel(directory: Path, filename: str, name: str, version: str, extra: str = "") -> Path:
    """A wheel of ``name`` ``version`` saved under ``filename`` (any spelling of it)."""
    from tests.distributions import wheel_bytes

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_bytes(wheel_bytes(name, version, module_source=f"# {extra}\n"))
    return path


@pytest.mark.parametrize(("filename", "version"), [
    ("Demo-1.0-py3-none-any.whl", "1.0"),
    ("demo-1.0.0-py3-none-any.whl", "1.0.0"),
    ("demo-v1.0-py3-none-any.whl", "v1.0"),
    ("demo-1.0-1-py3-none-any.whl", "1.0"),
])
def test_one_file_per_release_whatever_its_spelling(tmp_path: Path, filename: str,
                                                    version: str) -> None:
    store = Store(tmp_path / "store")
    first = store.publish(_wheel(tmp_path / "a", "demo-1.0-py3-none-any.whl", "demo", "1.0"),
                          origin=Origin.BUILT).file
    with pytest.raises(PublishConflict) as e:
        # every origin obeys it, not only uploads
        store.publish(_wheel(tmp_path / "b", filename, "demo", version, "other"),
                      origin=Origin.UPSTREAM)
    assert e.value.existing == first and first.filename in e.value.message
    assert [f.filename for f in store.files()] == [first.filename]
    # the same bytes under another spelling are the file already published
    same = tmp_path / "c" / filename
    same.parent.mkdir()
    same.write_bytes(store.file_path(first).read_bytes())
    again = store.publish(same, origin=Origin.UPSTREAM)
    assert again.status is PublishStatus.IDENTICAL and again.file == first


def test_other_tags_versions_and_local_labels_are_other_releases(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for i, (filename, version) in enumerate([
        ("demo-1.0-py3-none-any.whl", "1.0"), ("demo-1.0-py2.py3-none-any.whl", "1.0"),
        ("demo-1.0.1-py3-none-any.whl", "1.0.1"), ("demo-1.0+local-py3-none-any.whl",
                                                   "1.0+local"),
    ]):
        store.publish(_wheel(tmp_path / str(i), filename, "demo", version, str(i)),
                      origin=Origin.BUILT)
    assert len(store.files()) == 4


def _staging_writer(root: str, done: str) -> None:
    """Stage a file and a scratch directory, say so, then wait to be killed."""
    store = Store(Path(root))
    store.staging_file(suffix=".part").write_bytes(b"x" * 1000)
    (store.tmp_dir() / "build-work").mkdir()
    Path(done).write_text("ready")
    time.sleep(120)


def test_a_dead_writers_staging_is_removed_a_live_ones_kept(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root)
    ctx = multiprocessing.get_context("spawn")
    done = tmp_path / "done"
    proc = ctx.Process(target=_staging_writer, args=(str(root), str(done)))
    proc.start()
    try:
        deadline = time.monotonic() + 60
        while not done.exists():
            assert time.monotonic() < deadline and proc.is_alive()
            time.sleep(0.05)
        staged = sorted(p.name for p in (root / "tmp").iterdir())
        assert len(staged) == 2
        Store(root)  # a new writer: the other one is alive, its work stays
        assert sorted(p.name for p in (root / "tmp").iterdir()) == staged
    finally:
        proc.kill()
        proc.join(30)
    Store(root)  # its owner died: the next writer removes it all
    assert list((root / "tmp").iterdir()) == []
    # only the last writer's own lock may remain; dead writers' locks go
    assert len(list((root / "locks").glob("writer-*.lock"))) <= 1


def _publish_then_die(root: str, wheel: str) -> None:
    """Publish, but die between renaming the file into place and committing its row."""
    import os

    from wheelhouse.store import catalogue

    def die(*_args: object) -> None:
        os._exit(9)

    catalogue.insert = die  # type: ignore[assignment]
    Store(Path(root)).publish(Path(wheel), origin=Origin.UPSTREAM)


def test_a_publisher_killed_before_its_commit_leaves_no_file(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root)
    wheel = make_wheel(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_publish_then_die, args=(str(root), str(wheel)))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 9
    debris = root / "files" / "demo" / wheel.name
    assert debris.exists(), "the test must catch the publisher between rename and commit"
    store = Store(root)
    assert not debris.exists() and not debris.with_name(debris.name + ".metadata").exists()
    assert store.files() == [] and list((root / "tmp").iterdir()) == []
    assert store.publish(wheel, origin=Origin.UPSTREAM).status is PublishStatus.PUBLISHED


def test_the_change_marker_follows_every_commit(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    reader = Store(tmp_path / "store", readonly=True)
    first = reader.change_token()
    assert first == 0
    f = store.publish(make_wheel(tmp_path), origin=Origin.BUILT).file
    assert reader.change_token() == 1 == reader.generation()
    store.set_yanked(f.filename, "bad")
    assert reader.change_token() == 2


def test_a_half_created_store_is_completed_or_refused(tmp_path: Path) -> None:
    import sqlite3

    root = tmp_path / "store"
    root.mkdir()
    sqlite3.connect(root / "catalogue.sqlite3").close()  # killed before the schema
    with pytest.raises(StoreError, match="half-created"):
        Store(root, readonly=True)
    assert Store(root).files() == []  # a writer completes it
    assert Store(root, readonly=True).generation() == 0
