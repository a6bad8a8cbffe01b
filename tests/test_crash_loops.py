"""kill -9, 50 times each, of the server while uploads stream in and of builds while they
publish (``tests/crash.py``). Issue 9's acceptance: no staging file older than the run
survives a restart, the catalogue matches the files, no traceback from any later command."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import clean_env
from tests.crash import (
    build_kill_loop,
    kill_group,
    no_traceback,
    server_kill_loop,
    store_problems,
)
from tests.distributions import write_wheel
from tests.hostile import get, serve
from wheelhouse.store.store import Store

pytestmark = pytest.mark.slow

ROUNDS = 50


def test_servers_killed_mid_upload_leave_no_debris(tmp_path: Path) -> None:
    store = tmp_path / "store"
    Store(store)
    token = tmp_path / "token"
    token.write_text("crash-loop-token\n")
    env = clean_env()
    loop = server_kill_loop(store, token, ROUNDS, env=env)
    print(f"server kill loop: {loop}")
    assert loop.rounds == ROUNDS
    assert loop.killed_mid_upload >= ROUNDS // 4, "the kills should land on uploads"
    assert loop.debris_seen > 0, "killed servers leave staging behind, until a restart"
    served = serve(store, "--upload-token-file", str(token), "--workers", "1", env=env)
    try:
        # the restart removed everything the killed servers staged
        assert list((store / "tmp").iterdir()) == []
        assert get(f"{served.base}/simple/")[0] == 200
    finally:
        served.stop()
    assert store_problems(store) == []
    assert no_traceback(["list", "--store", str(store)],
                        ["export", "--store", str(store), str(tmp_path / "export")],
                        env=env, ok=lambda code: code == 0) == []


def test_builds_killed_mid_publish_leave_no_debris(tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = clean_env()
    loop = build_kill_loop(tmp_path, store, ROUNDS, env=env)
    print(f"build kill loop: {loop}")
    assert loop.rounds == ROUNDS
    assert loop.killed_mid_upload >= ROUNDS // 2, "the kills should land on running builds"
    # the next build cleans up, completes the work and leaves nothing staged
    reqs = sorted(tmp_path.glob("r*.txt"), key=lambda p: int(p.stem[1:]))[-1]
    assert no_traceback(["build", str(reqs), "--store", str(store)],
                        env=env, ok=lambda code: code == 0) == []
    assert list((store / "tmp").iterdir()) == []
    assert store_problems(store) == []
    assert no_traceback(["list", "--store", str(store)],
                        ["build", str(reqs), "--store", str(store), "--dry-run"],
                        ["export", "--store", str(store), str(tmp_path / "export")],
                        env=env, ok=lambda code: code == 0) == []


def test_builds_killed_while_creating_the_store(tmp_path: Path) -> None:
    """A catalogue without tables is completed by the next writer and refused by readers
    with a message: never a traceback."""
    rng = random.Random(3)
    links = tmp_path / "links"
    links.mkdir()
    write_wheel(links, "wh-one", "1.0")
    reqs = tmp_path / "r.txt"
    reqs.write_text(f"--no-index\n--find-links {links}\nwh-one==1.0\n")
    env = clean_env()
    for i in range(10):
        store = tmp_path / f"store-{i}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "wheelhouse", "build", str(reqs), "--store", str(store)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True)
        time.sleep(rng.uniform(0.05, 0.6))
        kill_group(proc)
        # readers: fine, or one message (no store / half-created), never a traceback
        assert no_traceback(["list", "--store", str(store)],
                            ["build", str(reqs), "--store", str(store), "--dry-run"],
                            env=env, ok=lambda code: code in (0, 5)) == []
        # a writer completes or creates it
        assert no_traceback(["build", str(reqs), "--store", str(store)],
                            env=env, ok=lambda code: code == 0) == []
        assert no_traceback(["list", "--store", str(store)],
                            env=env, ok=lambda code: code == 0) == []
