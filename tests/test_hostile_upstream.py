"""The fall-through against an upstream that hangs, trickles, redirects off its origin, sends
50 MB or malformed JSON (``tests/hostile_upstream.py``), through ``wheelhouse serve`` as
shipped (granian). Issue 9's acceptance: hosted pages keep answering within 1 s, the client
gets a 502/504 for the unhosted name (503 when too many already wait), and no request leaves
the upstream's origin."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import clean_env
from tests.corpus import PROJECT, VERSION, original
from tests.hostile import Served, answered, get, serve
from tests.hostile_upstream import JSON, MALFORMED, HostileUpstream, flood
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

pytestmark = pytest.mark.slow

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[HostileUpstream]:
    up = HostileUpstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: HostileUpstream
           ) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("hostile-upstream")
    wheel = work / f"{PROJECT}-{VERSION}-py3-none-any.whl"
    wheel.write_bytes(original())
    Store(work / "store").publish(wheel, origin=Origin.UPLOADED)
    served = serve(work / "store", "--fall-through", "--index-url", upstream.url,
                   "--upstream-timeout", str(TIMEOUT), env=clean_env())
    try:
        yield served
    finally:
        served.stop()


def hosted(server: Served) -> str:
    return f"{server.base}/simple/{PROJECT}/"


@pytest.mark.parametrize("mode", ["hang", "trickle", "redirect", "big"]
                         + [f"json{k}" for k in range(len(MALFORMED))])
def test_a_bad_upstream_is_a_502_or_504_for_the_name(server: Served, mode: str) -> None:
    _once_not_busy(f"{server.base}/simple/ok-{mode}/")
    started = time.monotonic()
    status, body = get(f"{server.base}/simple/{mode}-one/", timeout=TIMEOUT + 10)
    assert status in (502, 504), (status, body[:300])
    assert b"upstream" in body and f"{mode}-one".encode() in body
    assert time.monotonic() - started < TIMEOUT + 5


@pytest.mark.parametrize("mode", ["hang", "trickle", "redirect", "big", "json0", "json6"])
def test_hosted_pages_answer_while_the_upstream_misbehaves(server: Served, mode: str) -> None:
    names = [f"{mode}-flood-{i}" for i in range(40 if mode != "big" else 12)]
    statuses: list[int] = []
    flooding = threading.Thread(
        target=lambda: statuses.extend(flood(server.base, names, timeout=TIMEOUT + 10)))
    flooding.start()
    time.sleep(0.3)
    try:
        assert answered(hosted(server), tries=4, within=1.0) == 4
    finally:
        flooding.join(TIMEOUT + 30)
    assert len(statuses) == len(names)
    # 503: more than the budget already waited, and were told to come back at once
    assert set(statuses) <= {502, 503, 504}, statuses


def _once_not_busy(url: str) -> tuple[int, bytes]:
    """The answer for ``url`` once the server is not busy with earlier floods (503)."""
    deadline = time.monotonic() + 60
    while True:
        status, body = get(url, timeout=TIMEOUT + 10)
        if status != 503 or time.monotonic() > deadline:
            return status, body
        time.sleep(1)


def test_no_request_leaves_the_upstreams_origin(server: Served,
                                                upstream: HostileUpstream) -> None:
    for i in range(3):
        status, body = _once_not_busy(f"{server.base}/simple/redirect-more-{i}/")
        assert status == 502 and b"another origin" in body
    assert upstream.trap.hits == []


def test_hashes_that_are_not_hex_are_not_passed_on(server: Served) -> None:
    _once_not_busy(f"{server.base}/simple/badhash-x/")
    status, body = get(f"{server.base}/simple/badhash-x/", headers={"Accept": JSON})
    assert status == 200
    page = json.loads(body)
    assert [f["filename"] for f in page["files"]] == ["badhash-x-2.0.tar.gz"]
    assert all(len(f["hashes"]["sha256"]) == 64 for f in page["files"])


def test_the_server_logged_no_traceback_for_upstream_pages(server: Served) -> None:
    # Broken pages are the upstream's fault: a message each, not a crash.
    assert "Traceback" not in "".join(server.output), "".join(server.output)[-3000:]
