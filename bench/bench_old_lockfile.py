"""A real lockfile of old C extensions on the four cp311 targets: cold and no-op.

Issue 8's benchmark. 20 pins from 2020-2021 (a closed set: their dependencies are pinned too),
most with no cp311 wheel upstream, built in the builder containers configured by --config
(builders/bootstrap's stand-ins by default), aarch64 under QEMU. Prints wall times, how many
were fetched, built and failed, the share of build time spent under emulation, and the
outcome of every pin x target with each failure's cause.

    .venv/bin/python bench/bench_old_lockfile.py [--config CONFIG] [--jobs 2] [--keep DIR]
        [--targets cp39-manylinux_x86_64,cp39-musllinux_x86_64] [--no-settings]

Issue 15's run: ``--targets cp39-manylinux_x86_64,cp39-musllinux_x86_64 --no-settings``, the
lockfile on the era's Python with no package settings at all (known fixes apply themselves).

Network: PyPI. Needs the engine and emulation (.ci/engine) and the images (builders/bootstrap).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

HERE = Path(__file__).resolve().parent
TARGETS = ["cp311-manylinux_x86_64", "cp311-musllinux_x86_64",
           "cp311-manylinux_aarch64", "cp311-musllinux_aarch64"]

# Old releases as an app from 2021 pinned them (pip-compile style, dependencies included),
# shared with tests/test_old_lockfile_e2e.py.
LOCK = (HERE.parent / "tests" / "fixtures" / "lock-2021.txt").read_text()

# What a team would write after reading the first run's causes and hints.
SETTINGS = """
[tool.wheelhouse]
build-timeout = 1800

[tool.wheelhouse.packages.pyyaml]
build-constraints = ["cython<3"]

[tool.wheelhouse.packages.psycopg2]
system-packages = ["libpq-dev"]

[tool.wheelhouse.packages.cffi]
system-packages = ["libffi-dev"]
"""


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("PIP_", "WHEELHOUSE_")) and k != "PYTHONDONTWRITEBYTECODE"}
    e["PIP_CONFIG_FILE"] = os.devnull
    return e


def run(args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "wheelhouse", *args], env=env(),
                          capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def target_of(filename: str, targets: list[str]) -> set[str]:
    """Which of ``targets`` a wheel serves (pure wheels serve all)."""
    _n, _v, _b, tags = parse_wheel_filename(filename)
    out = set()
    for t in targets:
        fam, arch = t.split("-")[1].split("_", 1)
        if any(tag.platform == "any" or (tag.platform.startswith(fam[:4])
               and tag.platform.endswith(arch)) for tag in tags):
            out.add(t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path,
                        default=Path("/var/cache/wheelhouse-bootstrap/wheelhouse-local-images.toml"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work here and keep the store and logs")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help="comma-separated targets [default: the four cp311 ones]")
    parser.add_argument("--no-settings", action="store_true",
                        help="no package settings: only the known fixes wheelhouse applies")
    args = parser.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-old-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "requirements.txt").write_text(LOCK)
    (work / "wheelhouse.toml").write_text(
        args.config.read_text() + ("\n[tool.wheelhouse]\nbuild-timeout = 1800\n"
                                   if args.no_settings else SETTINGS))
    store = work / "store"
    common = ["build", str(work / "requirements.txt"), "--store", str(store),
              "--config", str(work / "wheelhouse.toml"), "--jobs", str(args.jobs)]
    for t in targets:
        common += ["--target", t]
    print(f"cold run: 20 pins x {len(targets)} targets into {store} ...", flush=True)
    cold, first = run(common)
    (work / "cold.log").write_text(first.stdout + first.stderr)
    noop, second = run(common)
    (work / "noop.log").write_text(second.stdout + second.stderr)
    _t, listed = run(["list", "--json", "--store", str(store)])
    _t, failed = run(["list", "--failures", "--json", "--store", str(store)])
    files = json.loads(listed.stdout)
    failures = json.loads(failed.stdout) if failed.stdout.strip() else []
    pins = [ln.split("==") for ln in LOCK.split() if "==" in ln]
    table: dict[tuple[str, str], str] = {}
    build_seconds = {t: 0.0 for t in targets}
    for f in files:
        for t in target_of(f["filename"], targets):
            key = (canonicalize_name(f["project"]), t)
            if f["origin"] == "built" and f["provenance"].get("target") not in (None, t):
                continue
            table[key] = "built" if f["origin"] == "built" else "fetched"
            if f["origin"] == "built" and f["provenance"].get("target") == t:
                build_seconds[t] += float(f["provenance"].get("seconds", 0))
    for fail in failures:
        key = (canonicalize_name(fail["project"]), fail["target"])
        if key not in table:
            cause = (fail.get("cause") or [fail["message"]])[0]
            table[key] = f"FAILED: {cause[:70]}"
    print(f"\nexit status: cold {first.returncode}, no-op {second.returncode}")
    print(f"wall time:   cold {cold:.0f} s, no-op {noop:.2f} s")
    for status in ("fetched", "built"):
        print(f"{status:>8}: {sum(1 for v in table.values() if v == status)}")
    print(f"  failed: {sum(1 for v in table.values() if v.startswith('FAILED'))}"
          f" of {len(pins) * len(targets)} pin x target")
    total = sum(build_seconds.values())
    emulated = sum(s for t, s in build_seconds.items() if "aarch64" in t)
    if total:
        print(f"build time (compile, per provenance): {total:.0f} s, of which under QEMU "
              f"{emulated:.0f} s ({100 * emulated / total:.0f}%)")
    print("\n| pin | " + " | ".join(targets) + " |")
    print("|---|" + "---|" * len(targets))
    for name, version in pins:
        row = [table.get((canonicalize_name(name), t), "?") for t in targets]
        print(f"| {name}=={version} | " + " | ".join(row) + " |")
    print(f"\nlogs and store in {work}")


if __name__ == "__main__":
    main()
