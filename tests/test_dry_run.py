"""Issue 7 acceptance: ``--dry-run`` of a 50-pin lockfile for four targets prints each
target's plan and downloads no distribution file: the upstream (a local wheelhouse index,
which serves PEP 658 metadata) is asked for pages and ``.metadata`` files only, as its access
log shows. No network, no container engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import start_server, stop_server, wheelhouse
from tests.distributions import write_sdist, write_wheel
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

pytestmark = pytest.mark.slow

TARGETS = ["cp311-manylinux_x86_64", "cp311-manylinux_aarch64",
           "cp311-musllinux_x86_64", "cp311-musllinux_aarch64"]
GLIBC_WHEELS = ["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux_2_17_aarch64"]


def upstream_store(root: Path, work: Path) -> list[str]:
    """49 projects in chains of five, plus one that only aarch64 needs. p00-p29 have a pure
    wheel, p30-p39 glibc wheels only, p40-p48 only an sdist; all have an sdist."""
    store = Store(root)
    pins = []
    for i in range(49):
        name = f"p{i:02d}"
        deps = [f"p{i + 1:02d}==1.0"] if i % 5 != 4 and i < 48 else []
        if i == 0:
            deps.append("armdep==1.0; platform_machine == 'aarch64'")
        tags = ["py3-none-any"] if i < 30 else GLIBC_WHEELS if i < 40 else []
        for tag in tags:
            store.publish(write_wheel(work, name, "1.0", requires_dist=deps, tag=tag),
                          origin=Origin.UPLOADED)
        store.publish(write_sdist(work, name, "1.0"), origin=Origin.UPLOADED)
        pins.append(f"{name}==1.0")
    store.publish(write_wheel(work, "armdep", "1.0"), origin=Origin.UPLOADED)
    pins.append("armdep==1.0 ; platform_machine == 'aarch64'")
    return pins


def test_dry_run_of_50_pins_on_four_targets_downloads_no_file(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    pins = upstream_store(tmp_path / "upstream", work)
    assert len(pins) == 50
    server = start_server(tmp_path / "upstream", tmp_path / "upstream.log")
    try:
        lock = tmp_path / "lock.txt"
        lock.write_text("\n".join(pins) + "\n")
        args = ["build", str(lock), "--dry-run", "--store", str(tmp_path / "store"),
                "--index-url", f"{server.url}/simple/", "--jobs", "4"]
        for target in TARGETS:
            args += ["--target", target]
        res = wheelhouse(*args)
        log = server.access_log()
    finally:
        stop_server(server)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    starts = sorted((out.index(f"\n{t}:\n"), t) for t in TARGETS)
    ends = [s for s, _t in starts[1:]] + [out.index("Dry run: nothing was changed.")]
    plans = {t: out[start:end] for (start, t), end in zip(starts, ends, strict=True)}
    for target, plan in plans.items():
        steps = re.findall(r"^  (fetch|build|keep)\s+(\S+)", plan, re.M)
        wanted = 50 if "aarch64" in target else 49
        assert len(steps) == wanted, (target, plan)
        builds = {label for action, label in steps if action == "build"}
        # musllinux builds what has only glibc wheels; every target builds the sdist-only ones.
        expected = {f"p{i:02d}==1.0" for i in range(40, 49)}
        if "musllinux" in target:
            expected |= {f"p{i:02d}==1.0" for i in range(30, 40)}
        assert builds == expected, (target, sorted(builds ^ expected))
        assert ("armdep==1.0" in plan) == ("aarch64" in target)
    assert not (tmp_path / "store").exists(), "a dry run creates no store"
    requested = re.findall(r'"(?:GET|HEAD) (/files/\S+) HTTP', log)
    assert requested, "metadata was read from the upstream"
    downloads = [r for r in requested if not r.endswith(".metadata")]
    assert downloads == [], f"a dry run downloaded distribution files: {downloads[:5]}"
