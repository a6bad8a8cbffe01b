"""No-op warm-up from the config: a 50-pin pylock.toml x 4 targets, vs pip per target.

Issue 10's benchmark: a bare ``wheelhouse build`` in a project whose ``wheelhouse.toml`` names
a 50-pin ``pylock.toml`` and four targets (glibc and musl, x86_64 and aarch64), on a warm
store, must take under 1 s; and its ratio against doing the same through pip, one process per
target, each with the same wheels at hand: ``pip wheel`` for the host's target, ``pip download
--platform`` for the other three (``pip wheel`` cannot target another platform).

    .venv/bin/python bench/bench_noop_lockfile.py [--runs 5] [--lock bench/lock50.txt]

The wheels are made up (no network, no engine): the names and versions of ``--lock``, one
pure wheel per pin, or one per platform for the pins that are C extensions upstream. Times
whole processes (what a CI job pays) and prints medians and ratios measured in this same run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.distributions import write_wheel  # noqa: E402

TARGETS = {  # target -> the platform tag of its made-up wheels
    "cp311-manylinux_x86_64": "manylinux_2_17_x86_64",
    "cp311-manylinux_aarch64": "manylinux_2_17_aarch64",
    "cp311-musllinux_x86_64": "musllinux_1_2_x86_64",
    "cp311-musllinux_aarch64": "musllinux_1_2_aarch64",
}
#: pins of lock50.txt that ship platform wheels upstream.
COMPILED = {"cffi", "charset-normalizer", "lxml", "markupsafe", "msgpack", "pydantic-core",
            "pyyaml", "rpds-py", "simplejson", "sqlalchemy", "wrapt"}


def env() -> dict[str, str]:
    # Bytecode is written and reused, as for any installed package.
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("PIP_", "WHEELHOUSE_", "UV_")) and k != "PYTHONDONTWRITEBYTECODE"}
    e["PIP_CONFIG_FILE"] = os.devnull
    e["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return e


def make_project(work: Path, pins: list[tuple[str, str]]) -> Path:
    wheels = work / "wheels"
    wheels.mkdir()
    lock = ['lock-version = "1.0"', 'created-by = "bench"', ""]
    for name, version in pins:
        tags = ([f"cp311-cp311-{t}" for t in TARGETS.values()] if name in COMPILED
                else ["py3-none-any"])
        lock += ["[[packages]]", f'name = "{name}"', f'version = "{version}"']
        for tag in tags:
            wheel = write_wheel(wheels, name, version, tag=tag)
            sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
            lock += ["[[packages.wheels]]", f'path = "wheels/{wheel.name}"',
                     f"size = {wheel.stat().st_size}", f'hashes = {{ sha256 = "{sha}" }}']
        lock.append("")
    (work / "pylock.toml").write_text("\n".join(lock))
    (work / "requirements.txt").write_text("".join(f"{n}=={v}\n" for n, v in pins))
    targets = ", ".join(f'"{t}"' for t in TARGETS)
    (work / "wheelhouse.toml").write_text(
        f'requirements = ["pylock.toml"]\ntargets = [{targets}]\nstore = "store"\n')
    return work


def timed(cmds: list[list[str]], runs: int, cwd: Path, out: Path) -> list[float]:
    """Median-ready times of running ``cmds`` one after another, ``runs`` times."""
    times = []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        for cmd in cmds:
            subprocess.run(cmd, check=True, env=env(), cwd=cwd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lock", type=Path, default=HERE / "lock50.txt")
    args = parser.parse_args()
    pins = [tuple(ln.split("==")) for ln in args.lock.read_text().splitlines()
            if ln and not ln.startswith("#")]
    wheelhouse = [sys.executable, "-m", "wheelhouse"]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "wheelhouse")],
                   check=True, env=env(), stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="bench-noop-lock-") as tmp:
        work = make_project(Path(tmp), [(n, v) for n, v in pins])
        print(f"warming a store: {len(pins)} pins x {len(TARGETS)} targets ...", flush=True)
        subprocess.run([*wheelhouse, "build"], check=True, env=env(), cwd=work,
                       stdout=subprocess.DEVNULL)
        files = len(list((work / "store" / "files").rglob("*.whl")))
        print(f"{files} wheels in the store", flush=True)
        out = work / "out"
        ours = timed([[*wheelhouse, "build"]], args.runs, work, out)
        pip = [sys.executable, "-m", "pip"]
        common = ["-q", "--no-cache-dir", "--no-index", "--find-links", "wheels",
                  "-r", "requirements.txt"]
        host = [*pip, "wheel", *common, "-w", str(out)]
        foreign = [[*pip, "download", *common, "-d", str(out / t), "--only-binary", ":all:",
                    "--platform", tag, "--python-version", "3.11", "--implementation", "cp",
                    "--abi", "cp311"]
                   for t, tag in TARGETS.items() if t != "cp311-manylinux_x86_64"]
        peers = timed([host, *foreign], args.runs, work, out)
        one = timed([host], args.runs, work, out)
    m_ours, m_peers, m_one = (statistics.median(t) for t in (ours, peers, one))
    print(f"\nmedian of {args.runs} runs, {len(pins)}-pin pylock.toml x {len(TARGETS)} "
          "targets from wheelhouse.toml, warm store:")
    print(f"  wheelhouse build (no-op, all 4 targets)            {m_ours:7.3f} s")
    print(f"  pip, one process per target (wheel + 3 download)   {m_peers:7.3f} s   "
          f"ratio {m_peers / m_ours:5.1f}x")
    print(f"  pip wheel, the host's target alone                 {m_one:7.3f} s   "
          f"ratio {m_one / m_ours:5.1f}x")
    print(f"  under 1 s: {'yes' if m_ours < 1 else 'NO'}")


if __name__ == "__main__":
    main()
