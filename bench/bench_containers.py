"""Container builds: cold build time per target, start-up share, native vs emulated; and the
headline: installing C extensions from our index in a musl consumer vs compiling them there.

    .venv/bin/python bench/bench_containers.py [--runs 3] [--skip-targets]

Needs the engine, binfmt/QEMU and the stand-in images (`.ci/engine`, `builders/bootstrap`).
Everything listens on 127.0.0.1; containers use --network host only to reach it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import (  # noqa: E402  (the bench reuses the tests' real-server helpers)
    build_sdist,
    clean_env,
    start_server,
    stop_server,
)

TARGETS = ["cp311-manylinux_x86_64", "cp311-musllinux_x86_64", "cp311-manylinux_aarch64",
           "cp311-musllinux_aarch64"]
# Several C extensions with sdists, small ones and two that bundle their C library (as many
# real dependencies do); musllinux wheels of some exist upstream, but the baseline compiles
# them all from source, which is what an Alpine image without fitting wheels does.
HEADLINE = ["markupsafe==3.0.2", "netifaces==0.11.0", "simplejson==3.20.1", "wrapt==1.17.2",
            "regex==2024.11.6", "brotli==1.1.0", "whdemo-ext==1.0.0"]


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, env=clean_env(),
                          **kw)  # type: ignore[call-overload,no-any-return]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    run(cmd)
    return time.perf_counter() - start


def bootstrap_config() -> Path:
    out = run([str(ROOT / "builders" / "bootstrap")], timeout=3600).stdout
    return Path(out.strip().splitlines()[-1])


def cold_builds(config: Path, links: Path, work: Path, runs: int) -> dict[str, float]:
    images = tomllib.loads(config.read_text())["tool"]["wheelhouse"]["images"]
    reqs = work / "one.txt"
    reqs.write_text(f"--find-links {links}\nwhdemo-ext==1.0.0\n")
    results: dict[str, float] = {}
    print("\ncold build of whdemo-ext (fresh store each run; build deps fetched once and "
          "copied):")
    for target in TARGETS:
        image = images[target.split("-", 1)[1]]
        startup = statistics.median(
            timed(["docker", "run", "--rm", "--pull=never", "--network", "none", image,
                   "true"]) for _ in range(runs))
        totals = []
        for i in range(runs):
            store = work / f"store-{target}-{i}"
            # Warm the build requirements, so the figure is the build itself.
            run([sys.executable, "-m", "wheelhouse", "build", str(work / "deps.txt"),
                 "--store", str(store), "--target", target, "--config", str(config)])
            start = time.perf_counter()
            run([sys.executable, "-m", "wheelhouse", "build", str(reqs), "--store", str(store),
                 "--target", target, "--config", str(config)])
            totals.append(time.perf_counter() - start)
            shutil.rmtree(store)
        total = statistics.median(totals)
        results[target] = total
        print(f"  {target:<26} {total:6.1f} s   container start {startup:5.2f} s "
              f"({100 * startup / total:4.1f}% of the build)")
    for fam in ("manylinux", "musllinux"):
        native, emulated = results[f"cp311-{fam}_x86_64"], results[f"cp311-{fam}_aarch64"]
        print(f"  {fam}: emulated aarch64 / native x86_64 = {emulated / native:4.1f}x")
    return results


def headline(config: Path, links: Path, work: Path, runs: int) -> None:
    data = tomllib.loads(config.read_text())["tool"]["wheelhouse"]
    builder, consumer = data["images"]["musllinux_x86_64"], \
        data["consumer-images"]["musllinux_x86_64"]
    reqs = work / "headline.txt"
    reqs.write_text(f"--find-links {links}\n" + "\n".join(HEADLINE) + "\n")
    store = work / "headline-store"
    print(f"\nwarming the store for cp311-musllinux_x86_64 with {len(HEADLINE)} C extensions")
    run([sys.executable, "-m", "wheelhouse", "build", str(reqs), "--store", str(store),
         "--target", "cp311-musllinux_x86_64", "--config", str(config)], timeout=3600)
    # The baseline: the same pins from sdists, compiled in the musl image that has a compiler,
    # with the sdists and build requirements at hand (no network needed, nothing cached).
    deps = work / "sdists"
    deps.mkdir()
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d",
         str(deps), *[p for p in HEADLINE if not p.startswith("whdemo")]])
    for sdist in links.glob("whdemo*"):
        shutil.copy(sdist, deps)
    # The same build requirements wheelhouse resolved for these builds (setuptools, cffi, ...)
    # go in as wheels: the baseline compiles exactly the extensions, nothing more.
    headline_names = {p.split("==")[0].lower() for p in HEADLINE}
    build_deps = set()
    for wheel in (store / "files").rglob("*.whl"):
        project = wheel.parent.name
        if project not in headline_names:
            shutil.copy(wheel, deps)
            build_deps.add(project)
    # Pins with fitting wheels upstream were fetched, not built, so their build requirements
    # are not in the store; these have no requirements beyond setuptools.
    run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d",
         str(deps), "setuptools", "wheel"])
    build_deps |= {"setuptools", "wheel"}
    server = start_server(store, work / "server.log")
    try:
        ours = []
        compiled = []
        for _ in range(runs):
            ours.append(timed(
                ["docker", "run", "--rm", "--pull=never", "--network", "host", consumer, "sh",
                 "-c", "python3 -m pip install -q --no-cache-dir --only-binary :all: "
                 f"--index-url {server.url}/simple/ " + " ".join(HEADLINE)]))
            compiled.append(timed(
                ["docker", "run", "--rm", "--pull=never", "--network", "none", "-v",
                 f"{deps}:/deps:ro", builder, "sh", "-c",
                 "python3 -m pip install -q --no-cache-dir --no-index --find-links /deps "
                 "--no-binary :all: --only-binary " + ",".join(sorted(build_deps)) + " "
                 + " ".join(HEADLINE)]))
    finally:
        stop_server(server)
    m_ours, m_comp = statistics.median(ours), statistics.median(compiled)
    print(f"\nmusl consumer, {len(HEADLINE)} C extensions, median of {runs}:")
    print(f"  install wheels from our index (no compiler)   {m_ours:6.1f} s")
    print(f"  compile from sdists in a musl image with gcc  {m_comp:6.1f} s")
    print(f"  ratio {m_comp / m_ours:5.1f}x  (goal >= 20x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-targets", action="store_true")
    args = parser.parse_args()
    config = bootstrap_config()
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as tmp:
        work = Path(tmp)
        links = work / "links"
        links.mkdir()
        build_sdist("whdemo-ext", links)
        shutil.rmtree(links / "src")
        # Unpinned, so the lock picks what the build-requirement walk picks: the newest.
        (work / "deps.txt").write_text("setuptools>=40.8.0\nwheel\n")
        if not args.skip_targets:
            cold_builds(config, links, work, args.runs)
        headline(config, links, work, args.runs)
    os.sync()


if __name__ == "__main__":
    main()
