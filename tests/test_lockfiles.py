"""Lockfiles in, on their own: pylock.toml and uv.lock selected per target with its markers and
tags, and what goes to the resolver (exact pins with the lock's hashes, its files as the only
candidates). No network, no engine."""
# ruff: noqa: E501  (the fixtures are TOML, whose inline tables cannot span lines)

from __future__ import annotations

from pathlib import Path

import pytest

from wheelhouse.errors import RequirementsError
from wheelhouse.inputs import read_inputs
from wheelhouse.lockfiles.read import is_lockfile, read_lockfile
from wheelhouse.plan.model import Action
from wheelhouse.plan.resolver import Resolver, Views
from wheelhouse.targets import parse_target

X86 = parse_target("cp311-manylinux_x86_64")
MUSL_ARM = parse_target("cp311-musllinux_aarch64")
PY312 = parse_target("cp312-manylinux_x86_64")

H = {c: c * 64 for c in "abcdef"}

PYLOCK = f"""
lock-version = "1.0"
created-by = "hand"
requires-python = ">=3.11"

[[packages]]
name = "app-dep"
version = "1.0"

[[packages.wheels]]
url = "https://files.example/app_dep-1.0-py3-none-any.whl"
hashes = {{ sha256 = "{H['a']}" }}
size = 10
upload-time = 2024-02-02T16:30:19Z

[[packages]]
name = "speedups"
version = "2.0"
sdist = {{ url = "https://files.example/speedups-2.0.tar.gz", hashes = {{ sha256 = "{H['b']}" }} }}

[[packages.wheels]]
url = "https://files.example/speedups-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
hashes = {{ sha256 = "{H['c']}" }}

[[packages.wheels]]
path = "wheels/speedups-2.0-cp311-cp311-win_amd64.whl"
hashes = {{ sha256 = "{H['d']}" }}

[[packages]]
name = "armonly"
version = "1.1"
marker = "platform_machine == 'aarch64'"
wheels = [{{ url = "https://files.example/armonly-1.1-py3-none-any.whl", hashes = {{ sha256 = "{H['e']}" }} }}]

[[packages]]
name = "winonly"
version = "0.1"
marker = "sys_platform == 'win32'"
wheels = [{{ url = "https://files.example/winonly-0.1-py3-none-any.whl", hashes = {{ sha256 = "{H['f']}" }} }}]

[[packages]]
name = "the-app"
directory = {{ path = ".", editable = true }}
"""


def names(packages: tuple[object, ...]) -> set[str]:
    return {f"{p.name}=={p.version}" for p in packages}  # type: ignore[attr-defined]


def test_lockfiles_are_told_apart_by_name() -> None:
    assert is_lockfile(Path("pylock.toml")) and is_lockfile(Path("a/pylock.web.toml"))
    assert is_lockfile(Path("uv.lock"))
    assert not is_lockfile(Path("requirements.txt")) and not is_lockfile(Path("locks.toml"))


def test_pylock_is_selected_per_target_with_markers(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(PYLOCK)
    lock = read_lockfile(path)
    assert names(lock.select(X86)) == {"app-dep==1.0", "speedups==2.0"}
    # no wheel of speedups fits musllinux aarch64: still selected (its sdist is built)
    assert names(lock.select(MUSL_ARM)) == {"app-dep==1.0", "speedups==2.0", "armonly==1.1"}
    assert any("the-app" in n and "not built" in n for n in lock.notes)
    (speedups,) = [p for p in lock.packages() if p.name == "speedups"]
    urls = {c.filename: c.url for c in speedups.files}
    assert urls["speedups-2.0-cp311-cp311-win_amd64.whl"] == (
        tmp_path / "wheels" / "speedups-2.0-cp311-cp311-win_amd64.whl").as_uri()
    line = speedups.line()
    assert line.pinned_version == "2.0"
    assert line.hashes == {f"sha256:{H[c]}" for c in "bcd"}
    (dep,) = [p for p in lock.packages() if p.name == "app-dep"]
    assert dep.files[0].upload_time == "2024-02-02T16:30:19+00:00"
    assert dep.files[0].size == 10


def test_pylock_that_cannot_serve_a_target_says_so(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(PYLOCK.replace('requires-python = ">=3.11"',
                                   'requires-python = ">=3.11,<3.12"'))
    with pytest.raises(RequirementsError, match=r"cannot be installed on cp312"):
        read_lockfile(path).select(PY312)
    path.write_text(PYLOCK + '[[packages]]\nname = "vcsdep"\n'
                    'vcs = { type = "git", url = "https://x/y", commit-id = "abc" }\n')
    with pytest.raises(RequirementsError, match=r"vcsdep.*VCS"):
        read_lockfile(path)
    path.write_text(PYLOCK.replace('version = "1.1"', 'version = "1.2"'))
    with pytest.raises(RequirementsError, match=r"not a valid pylock\.toml"):
        read_lockfile(path)


UV_LOCK = f"""
version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "the-app"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "web", extra = ["proxy"] }},
    {{ name = "numpyish", version = "1.0", source = {{ registry = "https://pypi.example/simple" }}, marker = "python_full_version < '3.12'" }},
    {{ name = "numpyish", version = "2.0", source = {{ registry = "https://pypi.example/simple" }}, marker = "python_full_version >= '3.12'" }},
    {{ name = "winonly", marker = "sys_platform == 'win32'" }},
]

[package.dev-dependencies]
dev = [{{ name = "pytestish" }}]
docs = [{{ name = "docsish" }}]

[[package]]
name = "web"
version = "2.0"
source = {{ registry = "https://pypi.example/simple" }}
dependencies = [{{ name = "armonly", marker = "platform_machine == 'aarch64'" }}]
sdist = {{ url = "https://files.example/web-2.0.tar.gz", hash = "sha256:{H['a']}", size = 5, upload-time = "2024-02-02T16:30:19.988Z" }}
wheels = [{{ url = "https://files.example/web-2.0-py3-none-any.whl", hash = "sha256:{H['b']}", size = 7 }}]

[package.optional-dependencies]
proxy = [{{ name = "socksish" }}]

[[package]]
name = "numpyish"
version = "1.0"
source = {{ registry = "https://pypi.example/simple" }}
wheels = [{{ url = "https://files.example/numpyish-1.0-cp311-cp311-musllinux_1_2_aarch64.whl", hash = "sha256:{H['c']}" }}]

[[package]]
name = "numpyish"
version = "2.0"
source = {{ registry = "https://pypi.example/simple" }}
sdist = {{ url = "https://files.example/numpyish-2.0.tar.gz", hash = "sha256:{H['d']}" }}

[[package]]
name = "armonly"
version = "1.1"
source = {{ registry = "https://pypi.example/simple" }}
wheels = [{{ url = "https://files.example/armonly-1.1-py3-none-any.whl", hash = "sha256:{H['e']}" }}]

[[package]]
name = "socksish"
version = "1.0"
source = {{ registry = "local-wheels" }}
wheels = [{{ path = "socksish-1.0-py3-none-any.whl" }}]

[[package]]
name = "winonly"
version = "0.1"
source = {{ registry = "https://pypi.example/simple" }}
wheels = [{{ url = "https://files.example/winonly-0.1-py3-none-any.whl", hash = "sha256:{H['f']}" }}]

[[package]]
name = "pytestish"
version = "8.0"
source = {{ registry = "https://pypi.example/simple" }}
wheels = [{{ url = "https://files.example/pytestish-8.0-py3-none-any.whl", hash = "sha256:{H['f']}" }}]

[[package]]
name = "docsish"
version = "1.0"
source = {{ registry = "https://pypi.example/simple" }}
wheels = [{{ url = "https://files.example/docsish-1.0-py3-none-any.whl", hash = "sha256:{H['f']}" }}]
"""


def test_uv_lock_walks_the_edges_with_each_targets_markers(tmp_path: Path) -> None:
    path = tmp_path / "uv.lock"
    path.write_text(UV_LOCK)
    lock = read_lockfile(path)
    common = {"web==2.0", "socksish==1.0", "pytestish==8.0"}
    assert names(lock.select(X86)) == common | {"numpyish==1.0"}
    assert names(lock.select(MUSL_ARM)) == common | {"numpyish==1.0", "armonly==1.1"}
    assert names(lock.select(PY312)) == common | {"numpyish==2.0"}
    (socks,) = [p for p in lock.packages() if p.name == "socksish"]
    assert socks.files[0].url == (
        tmp_path / "local-wheels" / "socksish-1.0-py3-none-any.whl").as_uri()
    assert socks.line().hashes == frozenset()  # uv does not hash local files
    (web,) = [p for p in lock.packages() if p.name == "web"]
    assert web.line().hashes == {f"sha256:{H['a']}", f"sha256:{H['b']}"}
    assert {c.filename for c in web.files} == {"web-2.0.tar.gz", "web-2.0-py3-none-any.whl"}


def test_uv_lock_default_groups_follow_the_project(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    (tmp_path / "pyproject.toml").write_text("[tool.uv]\ndefault-groups = ['docs']\n")
    lock = read_lockfile(tmp_path / "uv.lock")
    assert "docsish==1.0" in names(lock.select(X86))
    assert "pytestish==8.0" not in names(lock.select(X86))
    assert tmp_path / "pyproject.toml" in lock.inputs


def test_uv_lock_refuses_what_it_cannot_pin(tmp_path: Path) -> None:
    path = tmp_path / "uv.lock"
    path.write_text(UV_LOCK.replace('source = {{ registry = "local-wheels" }}'.replace(
        "{{", "{").replace("}}", "}"), 'source = { git = "https://x/y?rev=1#abc" }'))
    with pytest.raises(RequirementsError, match=r"socksish.*git source"):
        read_lockfile(path)
    path.write_text(UV_LOCK.replace('requires-python = ">=3.11"', 'requires-python = ">=3.12"'))
    with pytest.raises(RequirementsError, match="not cp311"):
        read_lockfile(path).select(X86)


def test_a_lock_reaches_the_resolver_as_pins_with_its_files(tmp_path: Path) -> None:
    (tmp_path / "pylock.toml").write_text(PYLOCK)
    (tmp_path / "requirements.txt").write_text("extra-thing==3.0\n")
    inputs = read_inputs([tmp_path / "requirements.txt", tmp_path / "pylock.toml"])
    assert inputs.files == (tmp_path / "requirements.txt", tmp_path / "pylock.toml")
    reqs = inputs.for_target(MUSL_ARM)
    assert [r.requirement.name for r in reqs.requirements] == [
        "extra-thing", "app-dep", "speedups", "armonly"]
    locked = inputs.locked_files()
    views = Views(stored=lambda *a: None, candidates=lambda name: locked.get(name, ()))
    resolver = Resolver(inputs.for_target(X86), X86, views)
    steps = {str(s.pin.project): s for s in resolver.first() if s.pin.project != "extra-thing"}
    assert steps["speedups"].action is Action.FETCH
    assert steps["speedups"].candidate is not None
    assert "manylinux" in steps["speedups"].candidate.filename
    resolver = Resolver(inputs.for_target(MUSL_ARM), MUSL_ARM, views)
    steps = {str(s.pin.project): s for s in resolver.first() if s.pin.project != "extra-thing"}
    assert steps["speedups"].action is Action.BUILD  # the lock's sdist
    assert steps["armonly"].action is Action.FETCH
    before = inputs.digest()
    (tmp_path / "pylock.toml").write_text(PYLOCK + "\n")
    assert inputs.digest() != before, "the plan cache key covers the lockfile's bytes"
