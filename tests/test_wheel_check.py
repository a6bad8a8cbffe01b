"""What the default test of a new wheel imports (build/check.py), without a build."""

from __future__ import annotations

import zipfile
from pathlib import Path

from wheelhouse.builder.smoke import top_level_modules


def _wheel(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def test_top_level_txt_names_only_what_the_wheel_holds(tmp_path: Path) -> None:
    # bcrypt 3.2.0 as built from its sdist: cffi's ext_package puts _bcrypt inside bcrypt/,
    # but top_level.txt still names _bcrypt; importing it would refuse a good wheel.
    wheel = _wheel(tmp_path / "bcrypt-3.2.0-cp311-cp311-linux_x86_64.whl", {
        "bcrypt/__init__.py": "", "bcrypt/_bcrypt.abi3.so": "",
        "bcrypt-3.2.0.dist-info/top_level.txt": "_bcrypt\nbcrypt\n",
        "bcrypt-3.2.0.dist-info/METADATA": "Name: bcrypt\n"})
    assert top_level_modules(wheel) == ["bcrypt"]


def test_top_level_txt_keeps_namespace_parts(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "x-1.0-py3-none-any.whl", {
        "ns/pkg/__init__.py": "", "x-1.0.dist-info/top_level.txt": "ns/pkg\n"})
    assert top_level_modules(wheel) == ["ns.pkg"]


def test_without_top_level_txt_the_contents_decide(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "x-1.0-cp311-cp311-linux_x86_64.whl", {
        "pkg/__init__.py": "", "single.py": "", "_speed.cpython-311-x86_64-linux-gnu.so": "",
        "x.libs/libz.so.1": "", "x-1.0.data/scripts/tool": "", "x-1.0.dist-info/RECORD": "",
        "not-a-name.py": ""})
    assert top_level_modules(wheel) == ["_speed", "pkg", "single"]


def test_a_top_level_txt_naming_nothing_held_falls_back(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "x-1.0-py3-none-any.whl", {
        "real/__init__.py": "", "x-1.0.dist-info/top_level.txt": "gone\n"})
    assert top_level_modules(wheel) == ["real"]
