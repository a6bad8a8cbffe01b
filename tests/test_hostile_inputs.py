"""The bad-input corpus (``tests/corpus.py``) against the real server, granian (the default)
and the built-in one: every probe is refused with a 4xx or dropped (harmless oddities get any
non-5xx answer), nothing is stored, the server logs no traceback; and the two corrupt archives
of issue 9 fail one pin each, without a traceback, when a build meets them through find-links.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import clean_env, wheelhouse
from tests.corpus import (
    PROJECT,
    VERSION,
    broken_deflate,
    corpus,
    encrypted_metadata,
    original,
    replay,
)
from tests.distributions import write_wheel
from tests.hostile import Served, get, serve
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

pytestmark = pytest.mark.slow

TOKEN = "corpus-upload-token"


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    wheel = tmp_path / f"{PROJECT}-{VERSION}-py3-none-any.whl"
    wheel.write_bytes(original())
    Store(root).publish(wheel, origin=Origin.UPLOADED)
    return root


@pytest.fixture(params=["granian", "builtin"])
def server(request: pytest.FixtureRequest, store_root: Path, tmp_path: Path
           ) -> Iterator[Served]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    # Short timeouts: cut bodies and unfinished headers end in seconds, not the defaults.
    served = serve(store_root, "--server", request.param, "--upload-token-file",
                   str(token_file), "--header-timeout", "2", "--upload-stall-timeout", "2",
                   env=clean_env())
    try:
        yield served
    finally:
        served.stop()


def test_every_bad_input_is_refused_and_nothing_is_stored(server: Served,
                                                          store_root: Path) -> None:
    before = {f.filename: f.sha256 for f in Store(store_root, readonly=True).files()}
    probes = list(corpus(TOKEN))
    assert len(probes) >= 180
    tally = replay(server.port, probes, timeout=6.0)
    after = {f.filename: f.sha256 for f in Store(store_root, readonly=True).files()}
    print(tally.line(len(after) - len(before)))
    assert tally.failures == []
    assert after == before
    # the server is still well, and said nothing alarming
    status, _ = get(f"{server.base}/simple/{PROJECT}/")
    assert status == 200
    server.stop()
    log = "".join(server.output)
    assert "Traceback" not in log, log[-3000:]
    assert list((store_root / "tmp").iterdir()) == []


def test_corrupt_archives_through_find_links_fail_one_pin_each(tmp_path: Path) -> None:
    links = tmp_path / "links"
    links.mkdir()
    write_wheel(links, "wh-good", "1.0")
    (links / "wh_encrypted-1.0-py3-none-any.whl").write_bytes(
        encrypted_metadata("wh-encrypted", "1.0"))
    (links / "wh_deflate-1.0-py3-none-any.whl").write_bytes(broken_deflate("wh-deflate", "1.0"))
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"--no-index\n--find-links {links}\nwh-good==1.0\nwh-encrypted==1.0\n"
                    "wh-deflate==1.0\n")
    out = wheelhouse("build", str(reqs), "--store", str(tmp_path / "store"),
                     env=clean_env(HOME=os.environ.get("HOME", str(tmp_path))))
    text = out.stdout + out.stderr
    assert out.returncode == 6, text
    assert "Traceback" not in text
    assert "2 pins failed" in text
    assert "METADATA is encrypted" in text
    assert [f.filename for f in Store(tmp_path / "store", readonly=True).files()] == [
        "wh_good-1.0-py3-none-any.whl"]
