from __future__ import annotations

import hashlib
import multiprocessing
import zipfile
from pathlib import Path

import pytest

from wheelhouse.errors import InvalidDistribution, PublishConflict, StoreError
from wheelhouse.store import Origin, PublishStatus, Store


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
