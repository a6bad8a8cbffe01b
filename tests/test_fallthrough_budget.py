"""The fall-through's budget (issue 9): a client waits for the upstream at most the upstream
timeout (then 504), at most ``upstream_waiters`` wait at once (the rest get 503 with
Retry-After at once), and an expired page is served stale while it is fetched again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.distributions import write_wheel
from tests.test_fallthrough import FakeUpstream
from wheelhouse.options import ServerOptions
from wheelhouse.server.app import create_app
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[FakeUpstream]:
    up = tmp_path / "up"
    up.mkdir()
    fake = FakeUpstream({f"wh-u{i}": [write_wheel(up, f"wh-u{i}", "1.0")] for i in range(4)})
    yield fake
    fake.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    src = tmp_path / "ours"
    src.mkdir()
    Store(tmp_path / "store").publish(write_wheel(src, "wh-hosted", "1.0"),
                                      origin=Origin.BUILT)
    return tmp_path / "store"


def client_for(root: Path, upstream: FakeUpstream, **options: object) -> FlaskClient:
    return create_app(ServerOptions(store=root, upstream_url=upstream.url,
                                    **options)).test_client()  # type: ignore[arg-type]


def test_a_slow_upstream_is_504_after_the_timeout(root: Path, upstream: FakeUpstream) -> None:
    client = client_for(root, upstream, upstream_timeout=0.5)
    upstream.delay = 3.0
    started = time.monotonic()
    resp = client.get("/simple/wh-u0/")
    assert resp.status_code in (502, 504), resp.get_data(as_text=True)
    assert "wh-u0" in resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    assert time.monotonic() - started < 2.5


def test_waiters_beyond_the_budget_get_503_at_once(root: Path,
                                                   upstream: FakeUpstream) -> None:
    app = create_app(ServerOptions(store=root, upstream_url=upstream.url, upstream_waiters=1,
                                   upstream_timeout=3.0))
    upstream.delay = 1.0
    first: list[int] = []
    waiting = threading.Thread(
        target=lambda: first.append(app.test_client().get("/simple/wh-u1/").status_code))
    waiting.start()
    time.sleep(0.3)
    started = time.monotonic()
    resp = app.test_client().get("/simple/wh-u2/")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "2"
    assert time.monotonic() - started < 0.5
    # the names the store hosts never wait for anyone
    assert app.test_client().get("/simple/wh-hosted/").status_code == 200
    waiting.join(10)
    assert first == [200]


def test_an_expired_page_is_served_stale_while_it_is_fetched_again(
    root: Path, upstream: FakeUpstream
) -> None:
    client = client_for(root, upstream, upstream_ttl=0.2)
    fresh = client.get("/simple/wh-u3/")
    assert fresh.status_code == 200
    time.sleep(0.3)
    upstream.delay = 3.0
    started = time.monotonic()
    stale = client.get("/simple/wh-u3/")
    assert stale.status_code == 200 and stale.data == fresh.data
    assert time.monotonic() - started < 2.0  # one second of grace, not the upstream's three
    assert upstream.page_hits("wh-u3") == 2  # and it is being fetched again
