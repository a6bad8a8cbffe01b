"""A read-protected store stays protected when exported (issue 9): the export asks for the read
token and writes an nginx configuration that requires it, or is refused; real nginx then
answers 401 without the token and serves the index with it, /health saying only "ok"."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import clean_env, wheelhouse
from tests.nginx import executable, start_nginx
from tests.test_export import make_store
from wheelhouse import nginx
from wheelhouse.options import ServerOptions
from wheelhouse.server.app import create_app

TOKEN = "export-read-token"


@pytest.fixture
def protected(tmp_path: Path) -> Path:
    root = make_store(tmp_path / "store")
    # a server that can write the store and needs a read token marks it so
    create_app(ServerOptions(store=root, upload_token="up-token", read_token=TOKEN))
    return root


def test_export_of_a_protected_store_needs_the_token(protected: Path, tmp_path: Path) -> None:
    out = tmp_path / "web" / "export"
    refused = wheelhouse("export", "--store", str(protected), str(out))
    assert refused.returncode == 2, refused.stderr
    assert "read-protected" in refused.stderr and "--read-token-file" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not out.exists() and not out.with_name("export.nginx.conf").exists()
    # on purpose, openly
    public = wheelhouse("export", "--store", str(protected), str(out), "--public")
    assert public.returncode == 0, public.stderr
    assert not out.with_name("export.nginx.conf").exists()


def test_export_with_the_token_writes_a_config_that_asks_for_it(protected: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "web" / "export"
    done = wheelhouse("export", "--store", str(protected), str(out),
                      env=clean_env(WHEELHOUSE_READ_TOKEN=TOKEN))
    assert done.returncode == 0, done.stderr
    conf, htpasswd = out.with_name("export.nginx.conf"), out.with_name("export.htpasswd")
    assert f"-c {conf}" in done.stdout
    text = conf.read_text()
    assert f'root "{out}";' in text and f'auth_basic_user_file "{htpasswd}";' in text
    assert "auth_basic off;" in text.split("location = /health")[1].split("}")[0]
    assert TOKEN not in htpasswd.read_text() and TOKEN not in text
    # a token file works as well, and re-exporting replaces what export wrote
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    again = wheelhouse("export", "--store", str(protected), str(out), "--read-token-file",
                       str(token_file))
    assert again.returncode == 0, again.stderr


def test_a_config_export_did_not_write_is_never_replaced(protected: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "web" / "export"
    out.parent.mkdir()
    mine = out.with_name("export.nginx.conf")
    mine.write_text("# my own\n")
    done = wheelhouse("export", "--store", str(protected), str(out),
                      env=clean_env(WHEELHOUSE_READ_TOKEN=TOKEN))
    assert done.returncode != 0 and "refusing to replace" in done.stderr
    assert mine.read_text() == "# my own\n" and not out.exists()


def test_htpasswd_line_is_salted_sha1() -> None:
    line = nginx.htpasswd_line(TOKEN, salt=b"12345678")
    user, _, value = line.strip().partition(":")
    assert user == "__token__" and value.startswith("{SSHA}")
    raw = base64.b64decode(value.removeprefix("{SSHA}"))
    assert raw == hashlib.sha1(TOKEN.encode() + b"12345678").digest() + b"12345678"
    assert nginx.htpasswd_line(TOKEN) != nginx.htpasswd_line(TOKEN)


# -- real nginx ----------------------------------------------------------------------------------


def _fetch(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {}
    if token is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(
            f"__token__:{token}".encode()).decode()
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


@pytest.fixture
def nginx_base(protected: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if executable() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install -y nginx)")
    prefix = tmp_path / "web"
    out = prefix / "export"
    done = wheelhouse("export", "--store", str(protected), str(out),
                      env=clean_env(WHEELHOUSE_READ_TOKEN=TOKEN))
    assert done.returncode == 0, done.stderr
    proc, base = start_nginx(prefix, out.with_name("export.nginx.conf").read_text())
    try:
        yield base, out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_nginx_asks_for_the_token(nginx_base: tuple[str, Path]) -> None:
    base, out = nginx_base
    files = sorted(p.relative_to(out) for p in (out / "files").rglob("*.whl"))
    assert files
    for path in ("/simple/", f"/{files[0]}", "/links/"):
        assert _fetch(base + path)[0] == 401, path
        assert _fetch(base + path, "wrong")[0] == 401, path
        status, _ = _fetch(base + path, TOKEN)
        assert status == 200, path
    status, body = _fetch(f"{base}/simple/", TOKEN)
    assert body == (out / "simple" / "index.html").read_bytes()
    status, body = _fetch(f"{base}/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}
