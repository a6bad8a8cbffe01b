"""A store such as a team's would hold after a few runs, made without a build: wheels fetched
from upstream, wheels built here (with provenance and logs), and recorded build failures."""

from __future__ import annotations

from pathlib import Path

from tests.distributions import write_wheel
from wheelhouse.ledger import Failure, Ledger
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

X86 = "cp311-manylinux_x86_64"
MUSL = "cp311-musllinux_x86_64"
ARM = "cp311-manylinux_aarch64"
BROKEN_LOG = "logs/whdemo-ext/1.0.0/cp311-musllinux_x86_64-20260101T000000000000Z.log"
BUILT_LOG = "logs/markupsafe/2.1.5/cp311-manylinux_aarch64-20260101T000000000000Z.log"
CAUSE = "src/whdemo_ext/_core.c:1:10: fatal error: Python.h: No such file or directory"


def _log(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _built(store: Store, src: Path, name: str, version: str, tag: str, target: str,
           log: str) -> None:
    wheel = write_wheel(src, name, version, tag=tag)
    store.publish(wheel, origin=Origin.BUILT, provenance={
        "sdist": f"{name}-{version}.tar.gz", "target": target, "builder": "native",
        "log": log, "seconds": 12.5})


def _upstream(store: Store, src: Path, name: str, version: str, tag: str = "py3-none-any"
              ) -> None:
    wheel = write_wheel(src, name, version, tag=tag)
    store.publish(wheel, origin=Origin.UPSTREAM, provenance={
        "index": "https://pypi.org/simple/",
        "url": f"https://files.example/{wheel.name}"})


def make_web_store(root: Path) -> Path:
    """Three targets; built, fetched and failed entries; two versions of one project."""
    src = root.parent / f"{root.name}-wheels"
    src.mkdir(parents=True, exist_ok=True)
    store = Store(root)
    ledger = Ledger(root)
    _upstream(store, src, "requests", "2.32.3")
    _upstream(store, src, "idna", "3.10")
    _upstream(store, src, "markupsafe", "2.1.5",
              "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
    _upstream(store, src, "markupsafe", "2.1.5", "cp311-cp311-musllinux_1_1_x86_64")
    _log(root, BUILT_LOG, "# wheelhouse: markupsafe-2.1.5.tar.gz for cp311-manylinux_aarch64\n"
         "building... done\n")
    _built(store, src, "markupsafe", "2.1.5", "cp311-cp311-manylinux_2_17_aarch64", ARM,
           BUILT_LOG)
    _upstream(store, src, "markupsafe", "2.1.3",
              "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
    built_log = "logs/whdemo-ext/1.0.0/cp311-manylinux_x86_64-20260101T000000000000Z.log"
    _log(root, built_log, "# wheelhouse: whdemo_ext-1.0.0.tar.gz\nbuilt\n")
    _built(store, src, "whdemo-ext", "1.0.0", "cp311-cp311-manylinux_2_5_x86_64", X86,
           built_log)
    _log(root, BROKEN_LOG, "# wheelhouse: whdemo_ext-1.0.0.tar.gz for cp311-musllinux_x86_64\n"
         f"{CAUSE}\n<script>alert('not html')</script>\n# wheelhouse: the build failed\n")
    ledger.record_failure(Failure(
        key="k1", project="whdemo-ext", version="1.0.0", target=MUSL,
        message="the build failed (exit 1)", log=BROKEN_LOG, time="2026-01-01T00:00:00.000000Z",
        cause=(CAUSE,), hint="install the Python headers in the builder image"))
    return root


#: a version long enough to overflow a narrow first column
LONG_VERSION = "2024.12.31.post20241231123456"


def make_big_web_store(root: Path) -> Path:
    """``make_web_store`` grown to 50 pins: pure and binary upstream wheels, a long version,
    and failed builds on each target, as a team's store looks after a while."""
    make_web_store(root)
    src = root.parent / f"{root.name}-wheels"
    store = Store(root)
    ledger = Ledger(root)
    for i in range(40):
        _upstream(store, src, f"pure-dep-{i:02d}", f"1.{i}.0")
    for i in range(4):
        _upstream(store, src, f"binary-dep-{i}", "2.0",
                  "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
        _upstream(store, src, f"binary-dep-{i}", "2.0", "cp311-cp311-musllinux_1_2_x86_64")
        _upstream(store, src, f"binary-dep-{i}", "2.0", "cp311-cp311-manylinux_2_17_aarch64")
    _upstream(store, src, "long-version", LONG_VERSION)
    causes = {ARM: "error: command 'aarch64-linux-gnu-gcc' failed: No such file or directory",
              MUSL: "ld: cannot find -lssl: No such file or directory",
              X86: "ModuleNotFoundError: No module named 'setuptools_rust'"}
    for n, (target, cause) in enumerate(causes.items()):
        name = f"broken-{n}"
        log = f"logs/{name}/0.1/{target}-20260101T000000000000Z.log"
        _log(root, log, f"# wheelhouse: {name}-0.1.tar.gz for {target}\n{cause}\n")
        ledger.record_failure(Failure(
            key=f"big{n}", project=name, version="0.1", target=target,
            message="the build failed (exit 1)", log=log,
            time="2026-01-02T00:00:00.000000Z", cause=(cause,), hint=None))
    return root
