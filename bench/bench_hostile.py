"""The index under attack, on loopback only, with counts: the bad-input corpus, slow clients,
a hostile upstream, kill -9 loops, and requests/s on a project page with 256 connections.

    python bench/bench_hostile.py corpus       [--server granian|builtin|both]
    python bench/bench_hostile.py slow-clients [--max-connections 10000]
    python bench/bench_hostile.py upstream     [--flood 40]
    python bench/bench_hostile.py crash        [--rounds 50]   (always this checkout)
    python bench/bench_hostile.py rps          [--server granian|builtin|both] [--duration 5]
    python bench/bench_hostile.py all

``--python PY --checkout DIR`` runs the server of another checkout (its own venv's python,
run from its directory), e.g. main's, to print before/after figures from one run. The same
helpers back the tests (tests/hostile.py, corpus.py, hostile_upstream.py, crash.py), which
run these cases at small, bounded numbers. Every server listens on 127.0.0.1 and is stopped
at the end; rps needs wrk (``apt-get install -y wrk``) and prints ratios, not promises.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import clean_env
from tests.corpus import PROJECT, VERSION, corpus, original, replay
from tests.crash import build_kill_loop, server_kill_loop, store_problems
from tests.distributions import write_wheel
from tests.hostile import Holders, Served, answered, held_for, serve
from tests.hostile_upstream import MALFORMED, HostileUpstream, flood
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

TOKEN = "bench-hostile-token"


def make_store(work: Path, projects: int = 1) -> Path:
    root = work / "store"
    wheel = work / f"{PROJECT}-{VERSION}-py3-none-any.whl"
    wheel.write_bytes(original())
    store = Store(root)
    store.publish(wheel, origin=Origin.UPLOADED)
    src = work / "src"
    src.mkdir(exist_ok=True)
    for i in range(1, projects):
        store.publish(write_wheel(src, f"bench-p-{i:04d}", "1.0"), origin=Origin.UPLOADED)
    (work / "token").write_text(TOKEN)
    return root


@contextlib.contextmanager
def running(args: argparse.Namespace, store: Path, *flags: str) -> Iterator[Served]:
    served = serve(store, "--upload-token-file", str(store.parent / "token"), *flags,
                   env=clean_env(), python=args.python,
                   cwd=Path(args.checkout) if args.checkout else None)
    try:
        yield served
    finally:
        served.stop()


def server_flags(kind: str, args: argparse.Namespace) -> list[str]:
    """``--server`` as this checkout spells it (older ones have no granian default)."""
    return ["--server", kind] + (["--workers", "2"] if kind == "granian" else [])


# -- corpus --------------------------------------------------------------------------------------


def run_corpus(args: argparse.Namespace) -> None:
    kinds = ["granian", "builtin"] if args.server == "both" else [args.server]
    probes = list(corpus(TOKEN))
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
            store = make_store(Path(tmp))
            before = len(Store(store, readonly=True).files())
            short = ["--header-timeout", "2", "--upload-stall-timeout", "2"]
            with running(args, store, *server_flags(kind, args),
                         *(short if args.short_timeouts else [])) as served:
                tally = replay(served.port, probes)
            stored = len(Store(store, readonly=True).files()) - before
            print(f"corpus, {kind}: {tally.line(stored)}", flush=True)
            for failure in tally.failures:
                print(f"    not refused: {failure}")


# -- slow clients --------------------------------------------------------------------------------


def threshold(port: int, url: str, kind: str, ladder: list[int]) -> str:
    """The first number of held connections at which a fresh client gets no page in 1 s."""
    with Holders() as held:
        have = 0
        for n in ladder:
            if kind == "incomplete":
                have += held.incomplete(port, n - have)
            elif kind == "silent":
                have += held.silent(port, n - have)
            else:
                have += held.uploads(port, n - have, TOKEN)
            time.sleep(0.3)
            if answered(url, tries=2, within=1.0) == 0:
                return f"stops answering at {have} {kind}"
    return f"still answering with {have} {kind}"


def run_slow_clients(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-slow-") as tmp:
        store = make_store(Path(tmp))
        for kind in ("granian", "builtin"):
            with running(args, store, *server_flags(kind, args)) as served:
                url = f"{served.base}/simple/{PROJECT}/"
                start = b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                cap = args.hold_cap
                print(f"slow clients, {kind}:", flush=True)
                print(f"  a half-sent request is held {held_for(served.port, start, cap=cap):.0f}"
                      f" s (cap {cap:g}); a byte every 2 s: "
                      f"{held_for(served.port, start, cap=cap, every=2.0):.0f} s", flush=True)
                ladder = [8, 16, 32, 33, 64, 128, 512, 1024, 1100, 2048, 4096, 8192,
                          args.max_connections]
                for what in ("incomplete", "silent"):
                    print(f"  {threshold(served.port, url, what, ladder)}", flush=True)
                print(f"  {threshold(served.port, url, 'uploads', [1, 2, 4, 8, 16, 32, 64])}",
                      flush=True)


# -- hostile upstream ----------------------------------------------------------------------------


def run_upstream(args: argparse.Namespace) -> None:
    modes = ["hang", "trickle", "redirect", "big"] + [f"json{k}" for k in range(len(MALFORMED))]
    up = HostileUpstream()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-upstream-") as tmp:
            store = make_store(Path(tmp))
            flags = ["--fall-through", "--index-url", up.url, "--upstream-timeout", "2"]
            with running(args, store, *flags) as served:
                url = f"{served.base}/simple/{PROJECT}/"
                for mode in modes:
                    names = [f"{mode}-b{i}" for i in range(args.flood if mode != "big" else 8)]
                    statuses: list[int] = []
                    t = threading.Thread(target=lambda n=names, out=statuses: out.extend(
                        flood(served.base, n, timeout=20)))
                    started = time.monotonic()
                    t.start()
                    time.sleep(0.3)
                    ok = answered(url, tries=4, within=1.0)
                    t.join(60)
                    print(f"upstream {mode:<9} {len(names):>3} names: hosted {ok}/4 within 1 s;"
                          f" unhosted {dict(Counter(statuses))} in "
                          f"{time.monotonic() - started:.1f} s", flush=True)
                    time.sleep(2.5)  # let the flights end before the next mode
        print(f"requests that reached the redirect target: {len(up.trap.hits)}")
    finally:
        up.close()


# -- crash loops ---------------------------------------------------------------------------------


def run_crash(args: argparse.Namespace) -> None:
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        work = Path(tmp)
        store = make_store(work)
        rounds = args.rounds or 50
        loop = server_kill_loop(store, work / "token", rounds, env=env)
        with running(args, store, "--workers", "1"):
            left = list((store / "tmp").iterdir())
        print(f"server kill -9 x{loop.rounds}: {loop.killed_mid_upload} mid-upload, "
              f"{loop.uploads_done} uploads completed, {loop.debris_seen} staging entries "
              f"left by the kills; after a restart: {len(left)} left, "
              f"{len(store_problems(store))} catalogue/file mismatches", flush=True)
        store2 = work / "store-builds"
        loop = build_kill_loop(work, store2, rounds, env=env)
        reqs = sorted(work.glob("r*.txt"), key=lambda p: int(p.stem[1:]))[-1]
        done = subprocess.run([sys.executable, "-m", "wheelhouse", "build", str(reqs),
                               "--store", str(store2)], env=env, capture_output=True,
                              text=True, check=False)
        print(f"build kill -9 x{loop.rounds}: {loop.killed_mid_upload} while running, "
              f"{loop.debris_seen} staging entries left by the kills; next build exit "
              f"{done.returncode}, {len(list((store2 / 'tmp').iterdir()))} left, "
              f"{len(store_problems(store2))} mismatches, traceback: "
              f"{'Traceback' in done.stdout + done.stderr}", flush=True)


# -- requests per second -------------------------------------------------------------------------


def run_rps(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="bench-rps-") as tmp:
        store = make_store(Path(tmp), projects=200)
        names = [PROJECT] + [f"bench-p-{i:04d}" for i in range(1, 200)]
        script = Path(tmp) / "rotate.lua"
        paths = ",".join(f'"/simple/{n}/"' for n in names)
        script.write_text(
            f"local paths = {{{paths}}}\nlocal i = math.random(#paths)\n"
            'wrk.headers["Accept"] = "application/vnd.pypi.simple.v1+json"\n'
            "request = function() i = i % #paths + 1 return wrk.format(\"GET\", paths[i]) end\n")
        for kind in ["granian", "builtin"] if args.server == "both" else [args.server]:
            results = []
            with running(args, store, *server_flags(kind, args), *args.server_args) as served:
                time.sleep(1.0)
                for _ in range(args.rounds or 3):
                    out = subprocess.run(
                        ["wrk", "-t1", "-c256", f"-d{args.duration:g}s", "--timeout=5s", "-s",
                         str(script), served.base + "/"],
                        capture_output=True, text=True, check=True).stdout
                    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
                    errors = [ln.strip() for ln in out.splitlines()
                              if "Socket errors" in ln or "Non-2xx" in ln]
                    results.append(float(rps.group(1)) if rps else 0.0)
                    print(f"  {results[-1]:>9.0f} req/s  {'; '.join(errors) or 'no errors'}",
                          flush=True)
            print(f"/simple/<p>/ with 256 connections ({kind}): median "
                  f"{statistics.median(results):.0f} req/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["corpus", "slow-clients", "upstream", "crash", "rps",
                                         "all"])
    parser.add_argument("--server", choices=["granian", "builtin", "both"], default="both")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter that runs the server (another checkout's venv)")
    parser.add_argument("--checkout", help="that checkout's directory (run from there)")
    parser.add_argument("--short-timeouts", action="store_true",
                        help="corpus: 2 s header and stall timeouts, so cut requests end "
                        "before the client gives up (20 s)")
    parser.add_argument("--max-connections", type=int, default=10_000)
    parser.add_argument("--hold-cap", type=float, default=130.0,
                        help="seconds to wait for the server to drop a slow client")
    parser.add_argument("--flood", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--server-arg", dest="server_args", action="append", default=[],
                        help="rps: one more argument for `wheelhouse serve` (repeatable)")
    args = parser.parse_args()
    steps = {"corpus": run_corpus, "slow-clients": run_slow_clients, "upstream": run_upstream,
             "crash": run_crash, "rps": run_rps}
    for name, step in steps.items():
        if args.what in (name, "all"):
            step(args)


if __name__ == "__main__":
    main()
