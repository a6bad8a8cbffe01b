from __future__ import annotations

from pathlib import Path

import pytest

from wheelhouse.errors import RequirementsError
from wheelhouse.requirements import parse_requirements
from wheelhouse.targets import parse_target

SHA = "a" * 64


def test_lockfile_grammar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDX", "https://mirror.example/simple/")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.txt").write_text("six==1.16.0  # comment\n-c constraints.txt\n")
    (tmp_path / "sub" / "constraints.txt").write_text("idna<4\n")
    (tmp_path / "links").mkdir()
    req = tmp_path / "requirements.txt"
    req.write_text(
        "# a pip-compile lockfile\n"
        "--index-url ${IDX}\n"
        "--extra-index-url https://extra.example/simple/\n"
        "-f links\n"
        "-r sub/base.txt\n"
        "requests[socks]==2.32.3 \\\n"
        f"    --hash=sha256:{SHA} \\\n"
        f"    --hash sha256:{'B' * 64}\n"
        "colorama==0.4.6 ; sys_platform == 'win32'\n"
        "--trusted-host mirror.example\n"
        "\n"
    )
    rs = parse_requirements(req)
    names = [r.name for r in rs.requirements]
    assert names == ["six", "requests", "colorama"]
    requests = rs.requirements[1]
    assert requests.requirement.extras == {"socks"}
    assert requests.hashes == {f"sha256:{SHA}", f"sha256:{'b' * 64}"}
    assert requests.source == f"{req}:6"
    assert rs.index_url == "https://mirror.example/simple/"
    assert rs.extra_index_urls == ("https://extra.example/simple/",)
    assert rs.find_links == (str((tmp_path / "links").resolve()),)
    assert [c.name for c in rs.constraints] == ["idna"]
    assert rs.fully_pinned
    linux = parse_target("cp311-manylinux_x86_64").marker_environment()
    assert not rs.requirements[2].applies_to(linux)
    assert len(rs.files) == 3


@pytest.mark.parametrize(("line", "words"), [
    ("-e git+https://x.invalid/y.git#egg=y", "editable"),
    ("--editable ./y", "editable"),
    ("git+https://x.invalid/y.git", "VCS"),
    ("y @ https://x.invalid/y-1.tar.gz", "direct URL"),
    ("./y-1.0.tar.gz", "local path"),
    ("requests=>2", "not a valid requirement"),
    ("requests==2 --hash=md5:abc", "sha256"),
    ("--frobnicate", "unknown option"),
])
def test_unsupported_lines_name_file_and_line(tmp_path: Path, line: str, words: str) -> None:
    req = tmp_path / "r.txt"
    req.write_text(f"six==1.16.0\n{line}\n")
    with pytest.raises(RequirementsError) as e:
        parse_requirements(req)
    assert f"{req}:2" in str(e.value)
    assert words in str(e.value)


def test_include_cycle_and_missing_include(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("-r b.txt\n")
    (tmp_path / "b.txt").write_text("-r a.txt\n")
    with pytest.raises(RequirementsError, match="include each other"):
        parse_requirements(tmp_path / "a.txt")
    (tmp_path / "c.txt").write_text("-r missing.txt\n")
    with pytest.raises(RequirementsError, match=r"missing\.txt"):
        parse_requirements(tmp_path / "c.txt")


def test_unpinned_input_is_not_fully_pinned(tmp_path: Path) -> None:
    req = tmp_path / "r.txt"
    req.write_text("requests>=2\nsix==1.16.0\nidna==3.*\n")
    rs = parse_requirements(req)
    assert not rs.fully_pinned
    assert [r.pinned_version for r in rs.requirements] == [None, "1.16.0", None]
