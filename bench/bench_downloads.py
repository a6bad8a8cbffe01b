"""Where users wait: small wheel downloads and project pages from ``wheelhouse serve`` against
nginx serving ``wheelhouse export`` of the same store, in the same run.

    python bench/bench_downloads.py                  # 3 rounds of 5 s per scenario
    python bench/bench_downloads.py --quick          # 1 round of 3 s
    python bench/bench_downloads.py --read-token     # ours needs a token to read (nginx: open)
    python bench/bench_downloads.py --ceiling        # also a bare WSGI callable under granian
    python bench/bench_downloads.py --ours-src DIR   # ours from DIR/wheelhouse (before/after)

Goals (issue 17): small-file downloads >= 0.5x nginx's requests/s without a read token;
``/simple/<p>/`` >= 0.85x nginx's for html and json; no errors at 256 connections.

What runs, all on 127.0.0.1, one server at a time (the order alternates between rounds):
- a store of tiny valid wheels (bench/gen_store.py: --projects projects, --files wheels);
- ours: ``serve_production`` with the defaults of ``wheelhouse serve`` (2 workers x 8
  threads), access log off; with --read-token every request carries the token;
- nginx: ``wheelhouse export`` of the store behind server/nginx.conf, access log off;
- with --ceiling, ``bare``: granian with the same settings as ours running a WSGI callable
  that answers every path with one fixed 1 KiB body: what granian's WSGI interface allows,
  with no Python work of ours (the ceiling of the hot path);
- wrk -t1 -c64 with a Lua script rotating over --sample paths: ``file`` (GET of small
  wheels), ``range`` (the last 100 bytes of them, as uv reads the zip directory; wrk cannot
  measure HEAD, it waits for a body), ``html`` and ``json`` (project pages with text/html
  and pip's Accept), and ``c256`` (json at 256 connections, where errors are counted).
The machine has 2 cores shared with wrk: absolute numbers drift with the load (`uptime` is
printed); the ratios of medians, measured in the same run, are what count.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench_index_scale import (
    PIP_ACCEPT,
    Fixture,
    Measurement,
    Running,
    Starter,
    client_env,
    free_port,
    make_fixture,
    nginx,
    parse_wrk,
    stop,
    store_file_paths,
    wait_until_up,
)
from gen_store import Layout

SCENARIOS = ("file", "range", "html", "json", "c256")
GOALS = {"file": 0.5, "html": 0.85, "json": 0.85}
TOKEN = "bench-read-token"

LAUNCH = """
import sys
if sys.argv[3]:  # --ours-src: that checkout's wheelhouse, not the installed one
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, sys.argv[3])
from pathlib import Path
from wheelhouse.options import ServerOptions
from wheelhouse.server.production import serve_production
serve_production(ServerOptions(store=Path(sys.argv[1]), host="127.0.0.1", port=0,
                               read_token=sys.argv[2] or None, access_log=False),
                 on_ready=lambda line: print(line, flush=True))
"""


def log(message: str) -> None:
    print(message, flush=True)


def ours(fixture: Fixture, sample: list[str], token: str | None, src: Path | None) -> Starter:
    @contextmanager
    def start() -> Iterator[Running]:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCH, str(fixture.store), token or "",
                                 str(src or "")],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=client_env())
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            match = re.search(r"(http://127\.0\.0\.1:\d+)/simple/", line)
            if not match:
                raise SystemExit(f"our server did not start: {line!r}")
            yield Running(base=match.group(1), simple="/simple/",
                          files=store_file_paths(fixture, sample))
        finally:
            stop(proc)
    return start


BARE_APP = """
BODY = b"x" * 1024
HEADERS = [("Content-Type", "application/octet-stream"), ("Content-Length", "1024"),
           ("ETag", '"6b160e52-400"'), ("Cache-Control", "max-age=365000000, immutable")]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
"""


def bare(work: Path, fixture: Fixture, sample: list[str]) -> Starter:
    """A fixed answer under granian run as ``serve_production`` runs it."""
    @contextmanager
    def start() -> Iterator[Running]:
        (work / "bare_app.py").write_text(BARE_APP)
        port = free_port()
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
             "--blocking-threads", "8", "--no-ws", "--http", "1", "--backpressure", "4096",
             "--http1-header-read-timeout", "10000", "--no-access-log",
             "--working-dir", str(work), "bare_app:app"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=client_env())
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base + "/", 30)
            yield Running(base=base, simple="/simple/", files=store_file_paths(fixture, sample))
        finally:
            stop(proc)
    return start


def script(path: Path, method: str, paths: Sequence[str], headers: dict[str, str]) -> Path:
    listed = "{\n" + ",\n".join(json.dumps(p) for p in paths) + "\n}"
    fields = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    path.write_text(
        f"local paths = {listed}\n"
        "local i = math.random(#paths)\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        f"  return wrk.format({json.dumps(method)}, paths[i], {{{fields}}})\n"
        "end\n"
    )
    return path


def wrk(base: str, lua: Path, connections: int, duration: float) -> Measurement:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout=10s",
         "--latency", "-s", str(lua), base + "/"],
        capture_output=True, text=True, timeout=duration + 70, check=True,
    ).stdout
    return parse_wrk(out)


def measure(label: str, starter: Starter, pages: list[str], auth: dict[str, str],
            args: argparse.Namespace, work: Path,
            results: dict[tuple[str, str], list[Measurement]]) -> None:
    with starter() as srv:
        page_paths = [f"{srv.simple}{name}/" for name in pages]
        plan = {
            "file": ("GET", srv.files, {}),
            "range": ("GET", srv.files, {"Range": "bytes=-100"}),
            "html": ("GET", page_paths, {"Accept": "text/html"}),
            "json": ("GET", page_paths, {"Accept": PIP_ACCEPT}),
            "c256": ("GET", page_paths, {"Accept": PIP_ACCEPT}),
        }
        warm = script(work / f"{label}-warm.lua", "GET", srv.files + page_paths, auth)
        wrk(srv.base, warm, args.connections, args.warmup)
        for scenario, (method, paths, headers) in plan.items():
            lua = script(work / f"{label}-{scenario}.lua", method, paths, {**headers, **auth})
            connections = 256 if scenario == "c256" else args.connections
            m = wrk(srv.base, lua, connections, args.duration)
            results.setdefault((label, scenario), []).append(m)
            log(f"  {label:<6} {scenario:<5} {m.rps:>9.0f} req/s  p99 {m.p99_ms:7.1f} ms  "
                f"errors {m.errors}")


def median_rps(runs: list[Measurement]) -> float:
    return statistics.median(m.rps for m in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--sample", type=int, default=200, help="paths in the rotation")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--read-token", action="store_true",
                        help="ours needs a read token (sent by every request)")
    parser.add_argument("--ours-src", type=Path, default=None,
                        help="run ours from this directory's wheelhouse/ (a before/after "
                        "comparison: git archive BASE wheelhouse | tar -x -C DIR)")
    parser.add_argument("--ceiling", action="store_true",
                        help="also measure a bare WSGI callable under granian")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the fixture here between runs (default: a temporary dir)")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3.0, 1.0
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} not found: apt-get install -y {tool}")
    work = args.work or Path(tempfile.mkdtemp(prefix="wheelhouse-downloads-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        layout = Layout(projects=args.projects, files=args.files,
                        big_files=max(1, args.files // args.projects))
        fixture = make_fixture(work, "downloads", layout)
        sample = fixture.sample(args.sample)
        token = TOKEN if args.read_token else None
        auth = ({"Authorization": "Basic " + base64.b64encode(f"__token__:{TOKEN}".encode())
                 .decode()} if token else {})
        servers: list[tuple[str, Starter, dict[str, str]]] = [
            ("ours", ours(fixture, sample, token, args.ours_src), auth),
            ("nginx", nginx(fixture, work, sample), {}),
        ]
        if args.ceiling:
            servers.append(("bare", bare(work, fixture, sample), {}))
        results: dict[tuple[str, str], list[Measurement]] = {}
        log(f"ours: wheelhouse serve defaults{' with a read token' if token else ''}; "
            f"{len(sample)} paths in rotation; load: {os.getloadavg()[0]:.1f}")
        for round_no in range(1, args.rounds + 1):
            log(f"round {round_no}/{args.rounds} (load {os.getloadavg()[0]:.1f})")
            order = servers if round_no % 2 else list(reversed(servers))
            for label, starter, headers in order:
                measure(label, starter, sample, headers, args, work, results)
        log("")
        log(f"median of {args.rounds} round(s), wrk -t1 -c{args.connections} (c256: 256), "
            f"{args.duration:g} s each; load at the end: {os.getloadavg()[0]:.1f}")
        for scenario in SCENARIOS:
            a, b = results[("ours", scenario)], results[("nginx", scenario)]
            ratio = median_rps(a) / median_rps(b) if median_rps(b) else float("nan")
            goal = GOALS.get(scenario)
            verdict = ("" if goal is None or token else
                       f"goal >= {goal}x  {'PASS' if ratio >= goal else 'FAIL'}")
            log(f"  {scenario:<5} ours {median_rps(a):>8.0f}  nginx {median_rps(b):>8.0f}  "
                f"ours/nginx {ratio:5.2f}x  {verdict}")
            if args.ceiling:
                c = median_rps(results[("bare", scenario)])
                log(f"        bare granian WSGI {c:>8.0f}  bare/nginx {c / median_rps(b):5.2f}x"
                    f"  ours/bare {median_rps(a) / c:5.2f}x")
        errors = max(m.errors for m in results[("ours", "c256")])
        log(f"  errors at 256 connections, ours: {errors}  goal 0  "
            f"{'PASS' if errors == 0 else 'FAIL'}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
