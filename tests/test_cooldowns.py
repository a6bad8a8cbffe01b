"""Issue 10, item 8: cooldowns against our index, with real uv and pip. The index's PEP 700
upload-time stays truthful (when the file entered this store), so a wheel built today for an
old release looks new to a cooldown; the README's uv config (the wheelhouse index with
``exclude-newer = false``) installs it, while the cooldown still holds for other indexes."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import clean_env, start_server, stop_server, wheelhouse
from tests.distributions import write_wheel


def uv(*args: str) -> subprocess.CompletedProcess[str]:
    from uv import find_uv_bin

    return subprocess.run([find_uv_bin(), *args], capture_output=True, text=True,
                          env=clean_env(), timeout=300, check=False)


def test_uv_with_a_cooldown_takes_our_fresh_wheels_when_told_the_index_is_exempt(
        tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel(wheels, "whcool", "1.0")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--no-index\n--find-links {wheels}\nwhcool==1.0\n")
    store = tmp_path / "store"
    done = wheelhouse("build", str(reqs), "--store", str(store))
    assert done.returncode == 0, done.stdout + done.stderr
    server = start_server(store, tmp_path / "server.log")
    try:
        index = f"{server.url}/simple/"
        request = urllib.request.Request(
            f"{index}whcool/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(request) as resp:
            (entry,) = json.load(resp)["files"]
        uploaded = datetime.fromisoformat(entry["upload-time"].replace("Z", "+00:00"))
        assert abs(datetime.now(UTC) - uploaded) < timedelta(minutes=10), \
            "upload-time is when the file entered this store, never backdated"

        assert uv("venv", "-q", str(tmp_path / "venv")).returncode == 0
        python = str(tmp_path / "venv")
        cooldown = tmp_path / "cooldown.toml"
        cooldown.write_text('exclude-newer = "7 days"\n')
        refused = uv("pip", "install", "--python", python, "--config-file", str(cooldown),
                     "--index-url", index, "whcool==1.0")
        assert refused.returncode != 0
        assert "exclude-newer" in refused.stderr

        exempt = tmp_path / "uv.toml"  # as the README shows it
        exempt.write_text(f'exclude-newer = "7 days"\n\n[[index]]\nname = "wheelhouse"\n'
                          f'url = "{index}"\ndefault = true\nexclude-newer = false\n')
        installed = uv("pip", "install", "--python", python, "--config-file", str(exempt),
                       "whcool==1.0")
        assert installed.returncode == 0, installed.stdout + installed.stderr

        # pip's cooldown has no per-index exemption: it hides our fresh files, as documented
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "dl"),
             "--index-url", index, "--uploaded-prior-to", "P7D", "whcool==1.0"],
            capture_output=True, text=True, env=clean_env(), timeout=300, check=False)
        assert pip.returncode != 0 and "No matching distribution" in pip.stderr
    finally:
        stop_server(server)
