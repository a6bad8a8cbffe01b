"""The shared-service commands end to end: `wheelhouse build --publish` fills a remote index
through its upload API, and `wheelhouse serve` takes its token from a file or the environment
and falls through to the upstream only when asked."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import clean_env, start_server, stop_server, wheelhouse

pytestmark = [pytest.mark.network, pytest.mark.slow]


def listing(store: Path) -> dict[str, str]:
    out = wheelhouse("list", "--json", "--store", str(store))
    assert out.returncode == 0, out.stderr
    return {f["filename"]: f["sha256"] for f in json.loads(out.stdout)}


def test_build_publish_uploads_only_what_the_remote_lacks(sdists: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    remote = tmp_path / "remote"
    server = start_server(remote, tmp_path / "server.log", "--upload-token-file",
                          str(token_file), "--fall-through")
    try:
        reqs = tmp_path / "requirements.txt"
        reqs.write_text(f"--find-links {sdists}\nwhdemo-ext==1.0.0\nidna==3.10\n")
        url = f"{server.url}/legacy/"
        env = clean_env(WHEELHOUSE_UPLOAD_TOKEN="s3cret-token")
        first = wheelhouse("build", str(reqs), "--store", str(tmp_path / "a"), "--publish",
                           url, env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "2 uploaded" in first.stdout
        assert listing(remote) == listing(tmp_path / "a")
        # A second runner reads through the shared index (which falls through to PyPI for
        # what it does not host): it fetches what the first built, builds nothing, uploads
        # nothing.
        second = wheelhouse("build", str(reqs), "--store", str(tmp_path / "b"), "--index-url",
                            f"{server.url}/simple/", "--publish", url, env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "building" not in second.stdout and "0 uploaded" in second.stdout
        assert listing(tmp_path / "b") == listing(remote)
        # A third runner that rebuilds on its own gets the same bytes (builds run from a
        # fixed path with SOURCE_DATE_EPOCH), so there is nothing to upload and no conflict.
        third = wheelhouse("build", str(reqs), "--store", str(tmp_path / "c"), "--publish",
                           url, env=env)
        assert third.returncode == 0, third.stdout + third.stderr
        assert "building" in third.stdout and "0 uploaded" in third.stdout
        assert listing(remote) == listing(tmp_path / "a") == listing(tmp_path / "c")
        # A wrong token is refused as soon as there is something to upload; nothing stored.
        more = tmp_path / "more.txt"
        more.write_text(reqs.read_text() + "six==1.16.0\n")
        wrong = wheelhouse("build", str(more), "--store", str(tmp_path / "c"), "--publish",
                           url, env=clean_env(WHEELHOUSE_UPLOAD_TOKEN="wrong"))
        assert wrong.returncode == 9, wrong.stdout + wrong.stderr
        assert "Traceback" not in wrong.stderr
        assert not any(name.startswith("six-") for name in listing(remote))
    finally:
        stop_server(server)


def test_serve_falls_through_only_when_asked(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (tmp_path / "r.txt").write_text("idna==3.10\n")
    assert wheelhouse("build", str(tmp_path / "r.txt"), "--store", str(store)).returncode == 0
    plain = start_server(store, tmp_path / "plain.log")
    through = start_server(store, tmp_path / "through.log", "--fall-through")
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{plain.url}/simple/six/")
        assert e.value.code == 404
        with urllib.request.urlopen(f"{through.url}/simple/six/") as resp:
            assert resp.status == 200 and b"six-1.16.0" in resp.read()
        with urllib.request.urlopen(f"{through.url}/simple/idna/") as resp:
            page = resp.read().decode()
        assert "idna-3.10" in page and "idna-3.9" not in page, "hosted names never merge"
    finally:
        stop_server(plain)
        stop_server(through)
