"""Issue 16, item 8: exit statuses and hints that mislead. Each hint here is followed as a
person would follow it, and then the command succeeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import build_sdist, clean_env, tar_sdist, wheelhouse

pytestmark = [pytest.mark.slow]


def test_an_unreachable_index_is_the_upstreams_failure(tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six==1.17.0\n")
    done = wheelhouse("build", str(reqs), "--store", str(tmp_path / "s"), "--index-url",
                      "http://127.0.0.1:9/simple/", env=clean_env(CI="true"))
    assert done.returncode == 4, done.stdout + done.stderr
    assert "the upstream index or a find-links source failed" in done.stderr
    assert "check the versions exist" not in done.stderr


@pytest.mark.network
def test_the_vcs_hint_followed_verbatim_builds(tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("whdemo-ext @ git+https://example.invalid/whdemo-ext.git\n")
    refused = wheelhouse("build", str(reqs), "--store", str(tmp_path / "s"))
    assert refused.returncode == 2
    assert "wheelhouse build --find-links DIR" in refused.stderr
    # The hint: build its sdist, pin NAME==VERSION, give wheelhouse the sdist's directory.
    dist = tmp_path / "dist"
    build_sdist("whdemo-ext", dist)
    reqs.write_text("whdemo-ext==1.0.0\n")
    done = wheelhouse("build", str(reqs), "--store", str(tmp_path / "s"), "--find-links",
                      str(dist), env=clean_env(CI="true"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert list((tmp_path / "s" / "files" / "whdemo-ext").glob("*.whl"))


def test_a_report_path_that_cannot_be_written_is_refused_before_building(
        tmp_path: Path) -> None:
    links = tmp_path / "links"
    links.mkdir()
    tar_sdist("whbroken", "1.0.0", links)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {links}\nwhbroken==1.0.0\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = wheelhouse("build", str(reqs), "--store", str(tmp_path / "s"), "--report",
                      str(blocker / "r.json"), env=clean_env(CI="true"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot be written" in done.stderr
    assert not (tmp_path / "s" / "logs").exists()  # nothing was built


@pytest.mark.network
def test_check_says_a_build_failed_and_how_to_retry(tmp_path: Path) -> None:
    links = tmp_path / "links"
    links.mkdir()
    tar_sdist("whbroken", "1.0.0", links)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--find-links {links}\nwhbroken==1.0.0\n")
    store = tmp_path / "s"
    built = wheelhouse("build", str(reqs), "--store", str(store), env=clean_env(CI="true"))
    assert built.returncode == 6, built.stdout + built.stderr
    checked = wheelhouse("check", str(reqs), "--store", str(store), "--json")
    assert checked.returncode == 3
    missing = json.loads(checked.stdout)[0]["missing"][0]
    assert missing["reason"].startswith("its build failed") and "log:" in missing["reason"]
    assert "--retry-failed" in checked.stderr
