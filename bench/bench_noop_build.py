"""No-op `wheelhouse build` on a warm store vs `pip wheel` with the same wheels at hand.

Issue 2's goal: a no-op build of a 50-pin lockfile at least 10x faster than
`pip wheel -r requirements.txt --find-links <same wheels>`, and under 1 s.

    .venv/bin/python bench/bench_noop_build.py [--runs 5] [--lock bench/lock50.txt]
        [--baseline DIR]

With ``--baseline DIR`` (another checkout, e.g. ``git worktree add /tmp/base REV``) that
checkout's no-op is timed on the same store in the same run, interleaved with ours, so a
refactor can show it is no slower.

With ``--shared`` (issue 18) the same pins are also warmed into a shared store (an s3://
bucket on SeaweedFS with a PostgreSQL catalogue, started as the tests start them) and its
no-op, run from another process as a second CI runner would, is timed interleaved with the
local one.

Warms a fresh store first (network: PyPI), then times each command --runs times as whole
processes (what a CI job pays) and prints medians and ratios measured in this same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def env() -> dict[str, str]:
    # Bytecode is written and reused, as for any installed package: with
    # PYTHONDONTWRITEBYTECODE every run would recompile every module it imports.
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("PIP_", "WHEELHOUSE_")) and k != "PYTHONDONTWRITEBYTECODE"}
    e["PIP_CONFIG_FILE"] = os.devnull  # the host's pip config adds sources of its own
    e["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return e


def timed(cmd: list[str], runs: int, before: object = None,
          extra_env: dict[str, str] | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        if callable(before):
            before()
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env() | (extra_env or {}),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lock", type=Path, default=HERE / "lock50.txt")
    parser.add_argument("--baseline", type=Path, help="another checkout to time beside ours")
    parser.add_argument("--shared", action="store_true",
                        help="also time the no-op against an s3+postgresql store")
    args = parser.parse_args()
    pins = [ln for ln in args.lock.read_text().splitlines() if ln and not ln.startswith("#")]
    wheelhouse = [sys.executable, "-m", "wheelhouse"]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "wheelhouse")],
                   check=True, env=env(), stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="bench-noop-") as tmp, \
            contextlib.ExitStack() as services:
        work = Path(tmp)
        store = work / "store"
        print(f"warming a store with {len(pins)} pins from {args.lock} ...", flush=True)
        subprocess.run([*wheelhouse, "build", str(args.lock), "--store", str(store)],
                       check=True, env=env(), stdout=subprocess.DEVNULL)
        flat = work / "flat"
        flat.mkdir()
        for f in (store / "files").rglob("*.whl"):
            os.link(f, flat / f.name)
        print(f"{len(list(flat.iterdir()))} wheels in the store", flush=True)
        out = work / "out"

        def fresh_out() -> None:
            shutil.rmtree(out, ignore_errors=True)

        noop = [*wheelhouse, "build", str(args.lock), "--store", str(store)]
        base_env = {"PYTHONPATH": str(args.baseline)} if args.baseline else {}
        if args.baseline:
            subprocess.run([sys.executable, "-m", "compileall", "-q",
                            str(args.baseline / "wheelhouse")], check=True, env=env(),
                           stdout=subprocess.DEVNULL)
            subprocess.run(noop, check=True, env=env() | base_env,  # its own plan cache
                           stdout=subprocess.DEVNULL)
        shared_noop, shared_env = [], {}
        if args.shared:
            sys.path.insert(0, str(HERE.parent))
            from tests import services as real

            pg = services.enter_context(real.postgres())
            s3 = services.enter_context(real.seaweedfs())
            shared_env = s3.env()
            shared_noop = [*wheelhouse, "build", str(args.lock), "--store",
                           f"s3://{s3.new_bucket()}/index", "--catalogue", pg.new_database()]
            print("warming the shared store ...", flush=True)
            subprocess.run(shared_noop, check=True, env=env() | shared_env,
                           stdout=subprocess.DEVNULL)
        ours, base, shared = [], [], []
        for _ in range(args.runs):  # interleaved: the machine's load hits both alike
            ours += timed(noop, 1)
            if args.baseline:
                base += timed(noop, 1, extra_env=base_env)
            if shared_noop:
                shared += timed(shared_noop, 1, extra_env=shared_env)
        pip_base = [sys.executable, "-m", "pip", "wheel", "-q", "--no-cache-dir", "-w", str(out),
                    "-r", str(args.lock), "--find-links", str(flat)]
        pip_literal = timed(pip_base, args.runs, fresh_out)
        pip_offline = timed([*pip_base, "--no-index"], args.runs, fresh_out)
    m_ours, m_lit, m_off = (statistics.median(t) for t in (ours, pip_literal, pip_offline))
    print(f"\nmedian of {args.runs} runs, {len(pins)}-pin lockfile, warm store:")
    print(f"  wheelhouse build (no-op)                      {m_ours:7.3f} s")
    print(f"  pip wheel --find-links <same wheels>          {m_lit:7.3f} s   "
          f"ratio {m_lit / m_ours:5.1f}x  (goal >= 10x)")
    print(f"  pip wheel --find-links <same wheels> --no-index {m_off:5.3f} s   "
          f"ratio {m_off / m_ours:5.1f}x")
    print(f"  under 1 s: {'yes' if m_ours < 1 else 'NO'}")
    if shared:
        m_shared = statistics.median(shared)
        print(f"  wheelhouse build (no-op), s3+postgresql store  {m_shared:6.3f} s   "
              f"shared/local {m_shared / m_ours:5.2f}x")
    if base:
        m_base = statistics.median(base)
        print(f"  baseline {args.baseline} (no-op)  {m_base:7.3f} s   "
              f"ours/baseline {m_ours / m_base:5.2f}")


if __name__ == "__main__":
    main()
