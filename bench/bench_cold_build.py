"""A cold build against the seed approach: six small sdists for one target on the stand-in
builder image, `wheelhouse build` (repair and consumer check included) vs `pip wheel -r` of
the same requirements inside the same builder image (what a multi-stage Dockerfile does:
serial, no repair, no check), then the warm rerun, then a rebuild with the compile cache warm.

Issue 17's benchmark. Prints wall times, ratios measured in this same run, where wheelhouse's
time went (the report's phases), the compile cache's hit rate, and whether the wheels of the
cold and the cache-warm builds are the same bytes.

    .venv/bin/python bench/bench_cold_build.py [--config CONFIG] [--target cp311-manylinux_x86_64]
                                               [--pins six|heavy]

--pins six (the issue's six small sdists) spends most of a build around its compile (the
backend's Python, repair, check), so a warm compile cache cannot halve it; --pins heavy is
four sdists whose C takes most of their build (regex, zstandard's bundled zstd, ujson's
bundled double-conversion C++, lz4's bundled lz4), where the cache's worth shows. As a
reference, pip wheel runs again with ccache in front of its compilers, warm: what a compile
cache can save on the same pins when nothing else about the build changes.

wheelhouse runs with --jobs 1 (one build compiling at a time; its checks and the next
downloads overlap the compiles) and --jobs 2 (the default), cold and cache-warm each, and the
cache-warm rebuild is compared with the cold build of the same setting; pip wheel is serial.

Network: PyPI. Needs the engine (.ci/engine) and the images (builders/bootstrap).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HEAVY = """\
regex==2021.4.4
zstandard==0.15.2
ujson==4.0.2
lz4==3.1.3
"""

PINS = """\
netifaces==0.11.0
crcmod==1.7
markupsafe==2.0.1
simplejson==3.17.2
pyrsistent==0.17.3
setproctitle==1.2.2
"""


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WHEELHOUSE_"))}
    e["PIP_CONFIG_FILE"] = os.devnull
    e["CI"] = "true"
    return e


def timed(cmd: list[str], **kw: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env(), capture_output=True, text=True, check=False,
                          **kw)  # type: ignore[call-overload]
    return time.perf_counter() - start, done


def wheel_digests(store: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((store / "files").rglob("*.whl"))}


#: ccache in front of the compilers of the builder image, for pip wheel: pip builds in a new
#: temporary directory each time, so paths under /tmp are hashed relative to it.
CCACHE_PIP = """\
mkdir -p /tmp/cc-bin && for c in cc gcc c++ g++; do
  command -v "$c" >/dev/null && ln -sf "$(command -v ccache)" "/tmp/cc-bin/$c"; done
export PATH=/tmp/cc-bin:$PATH CCACHE_DIR=/work/pip-ccache CCACHE_BASEDIR=/tmp \\
  CCACHE_NOHASHDIR=1 CCACHE_COMPILERCHECK=content
exec {python} -m pip wheel -q --no-cache-dir -w /tmp/out -r /work/requirements.txt
"""


def _pip_wheel_with_ccache(image: str, python: str, work: Path) -> float | None:
    """pip wheel's time with a warm ccache (the second of two runs), or None where the image
    has no ccache."""
    cmd = ["docker", "run", "--rm", "--pull=never", "--network", "host", "-v",
           f"{work}:/work", "-v", "/etc/ssl/certs/ca-certificates.crt:/ca.crt:ro",
           "-e", "PIP_CERT=/ca.crt", image, "sh", "-c",
           "command -v ccache >/dev/null || exit 42; " + CCACHE_PIP.format(python=python)]
    seconds = 0.0
    for _ in range(2):
        seconds, done = timed(cmd)
        if done.returncode == 42:
            return None
        if done.returncode != 0:
            raise SystemExit(f"pip wheel with ccache failed: {done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path,
                        default=Path("/var/cache/wheelhouse-bootstrap/wheelhouse-local-images.toml"))
    parser.add_argument("--target", default="cp311-manylinux_x86_64")
    parser.add_argument("--pins", choices=("six", "heavy"), default="six")
    args = parser.parse_args()
    pins = PINS if args.pins == "six" else HEAVY
    platform = args.target.split("-", 1)[1]
    image = tomllib.loads(args.config.read_text())["tool"]["wheelhouse"]["images"][platform]
    py = args.target.split("-", 1)[0]
    python = f"/opt/python/{py.rstrip('t')}-{py}/bin/python"
    work = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    reqs = work / "requirements.txt"
    reqs.write_text(pins)
    wh = [sys.executable, "-m", "wheelhouse"]

    # The seed approach: pip wheel in the builder image, serial, no repair, no check.
    seed, done = timed(["docker", "run", "--rm", "--pull=never", "--network", "host", "-v",
                        f"{work}:/work", "-v", "/etc/ssl/certs/ca-certificates.crt:/ca.crt:ro",
                        "-e", "PIP_CERT=/ca.crt", image, "sh", "-c",
                        f"{python} -m pip wheel -q --no-cache-dir -w /tmp/out "
                        "-r /work/requirements.txt"])
    if done.returncode != 0:
        raise SystemExit(f"pip wheel failed: {done.stderr[-2000:]}")
    rows = {"pip wheel -r (seed)": seed}
    # What a warm compile cache can do for these pins at all: the seed approach with ccache
    # in front of its compilers (a cache of its own: filled by one run, timed by the next).
    seed_cached = _pip_wheel_with_ccache(image, python, work)
    if seed_cached is not None:
        rows["pip wheel -r, ccache warm (reference)"] = seed_cached
    # Cold means no compile cache either (pip wheel has none): those runs turn it off; the
    # cache's volume outlives runs, so with it on a "cold" build would hit earlier runs'.
    off = work / "no-compile-cache.toml"
    off.write_text(args.config.read_text() + "\n[tool.wheelhouse]\ncompile-cache = false\n")
    for jobs in (1, 2):
        store = work / f"store-j{jobs}"
        cmd = [*wh, "build", str(reqs), "--store", str(store), "--config", str(off),
               "--target", args.target, "--jobs", str(jobs), "--report",
               str(work / f"report-j{jobs}.json")]
        seconds, done = timed(cmd)
        if done.returncode != 0:
            raise SystemExit(f"wheelhouse build failed: {done.stdout[-3000:]}")
        rows[f"wheelhouse build --jobs {jobs} (cold, no compile cache)"] = seconds
        if jobs == 1:
            report = json.loads((work / "report-j1.json").read_text())
            # Sub-second, so one sample is mostly the machine's noise: the median of five.
            warm = statistics.median(
                timed([*cmd[:-2], "--report", str(work / "report-warm.json")])[0]
                for _ in range(5))
            rows["wheelhouse build (warm rerun, median of 5)"] = warm
            cold_digests = wheel_digests(store)
            # With the compile cache: a build into a new store fills it (or finds it filled
            # by earlier runs), then the store is wiped and the rebuild times the cache.
            on = [*cmd[:-2], "--report", str(work / "report-cache.json")]
            on[on.index(str(off))] = str(args.config)
            shutil.rmtree(store)
            filling, done = timed(on)
            if done.returncode != 0:
                raise SystemExit(f"wheelhouse build failed: {done.stdout[-3000:]}")
            rows["wheelhouse build --jobs 1 (filling the compile cache)"] = filling
            # Each --jobs setting rebuilt from a wiped store, three times: the median.
            same = True
            for warm_jobs in (1, 2):
                runs = []
                for _ in range(3):
                    shutil.rmtree(store)
                    on[on.index("--jobs") + 1] = str(warm_jobs)
                    seconds, done = timed(on)
                    if done.returncode != 0:
                        raise SystemExit(f"wheelhouse build failed: {done.stdout[-3000:]}")
                    runs.append(seconds)
                    same = same and wheel_digests(store) == cold_digests
                if warm_jobs == 1:
                    cache_report = json.loads((work / "report-cache.json").read_text())
                    notes = [ln for ln in done.stdout.splitlines() if "compile cache" in ln]
                rows[f"wheelhouse build --jobs {warm_jobs} (store wiped, cache warm, "
                     "median of 3)"] = statistics.median(runs)
    print(f"\n{len(pins.split())} sdists ({args.pins}) for {args.target} in {image}, 2 cores:")
    for name, seconds in rows.items():
        print(f"  {name:<66} {seconds:7.1f} s   x{seconds / seed:5.2f} of pip wheel")
    print(f"  warm rerun: {seed / warm:.0f}x faster than pip wheel")
    print("  phases (jobs 1 cold, summed):", json.dumps(report.get("phases", {})))
    print("  phases (jobs 1 cache warm, summed):", json.dumps(cache_report.get("phases", {})))
    print("  " + (notes[-1] if notes else "compile cache: no figures (no ccache in the image?)"))
    for jobs in (1, 2):
        cold = rows[f"wheelhouse build --jobs {jobs} (cold, no compile cache)"]
        cached = rows[f"wheelhouse build --jobs {jobs} (store wiped, cache warm, median of 3)"]
        print(f"  cache warm vs cold (jobs {jobs}): {cold / cached:.2f}x faster")
    print(f"  same wheels, cold vs cache-warm: {'yes' if same else 'NO'}")
    if seed_cached is not None:
        print(f"  reference: pip wheel with ccache warm vs cold: {seed / seed_cached:.2f}x faster "
              "(what a compile cache can save on these pins when nothing else changes)")
    print(f"work kept in {work}")


if __name__ == "__main__":
    main()
