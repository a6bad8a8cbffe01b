"""Requests per second on ``/simple/<project>/``: wheelhouse's server against pypiserver.

Generates a store of N projects (one small valid wheel each) with the Store API, serves it with
``wheelhouse.server.serve`` and the same files with ``pypi-server run``, both on 127.0.0.1, and
drives each with wrk under identical settings, rotating over every project page with pip's
Accept header. Prints the median requests/s of each and the ratio ours/pypiserver.

    python bench/bench_simple_rps.py [--projects 2000] [--duration 5] [--rounds 3]

Needs ``wrk`` (Debian: ``apt-get install -y wrk``) and pypiserver (in the test extra). Traffic
goes to loopback only; every run is bounded by --duration and the process cleans up after
itself. Two cores are shared by wrk and the server: compare the ratio, not absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import wheelhouse

# The fixture writers live with the tests; benches run from a checkout.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.distributions import write_wheel as make_wheel
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)


@dataclass(frozen=True, kw_only=True)
class Result:
    server: str
    requests_per_second: float
    latency: str
    errors: str


def build_fixture(work: Path, projects: int) -> tuple[Path, Path, list[str]]:
    wheels = work / "wheels"
    wheels.mkdir()
    store = Store(work / "store")
    names = [f"bench-pkg-{i:05d}" for i in range(projects)]
    started = time.monotonic()
    for name in names:
        store.publish(make_wheel(wheels, name, "1.0"), origin=Origin.UPLOADED)
    print(f"published {projects} wheels in {time.monotonic() - started:.1f} s", flush=True)
    return work / "store", wheels, names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not come up within {timeout:.0f} s")
        time.sleep(0.2)


def start_ours(store: Path, threads: int) -> tuple[subprocess.Popen[str], str]:
    code = (
        "import sys; from pathlib import Path; "
        "from wheelhouse.options import ServerOptions; "
        "from wheelhouse.server.serving import serve; "
        "serve(ServerOptions(store=Path(sys.argv[1]), host='127.0.0.1', port=0, "
        "threads=int(sys.argv[2]), access_log=False), "
        "on_ready=lambda line: print(line, flush=True))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(store), str(threads)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)/simple/", line)
    if not match:
        proc.kill()
        raise SystemExit(f"wheelhouse server did not start: {line!r}")
    return proc, match.group(1)


def start_pypiserver(wheels: Path) -> tuple[subprocess.Popen[str], str]:
    exe = shutil.which("pypi-server", path=os.path.dirname(sys.executable)) or shutil.which(
        "pypi-server"
    )
    if exe is None:
        raise SystemExit("pypi-server not found: pip install pypiserver")
    port = free_port()
    proc = subprocess.Popen(
        # No fallback: an unknown name must not be redirected off this machine.
        [exe, "run", "-p", str(port), "-i", "127.0.0.1", "--disable-fallback",
         "-a", ".", "-P", ".", str(wheels)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def start_granian(exe: str, work: Path, store: Path) -> tuple[subprocess.Popen[str], str]:
    """The same app under granian (one worker): what the hot path does without werkzeug's
    one-connection-per-request limit. Optional; granian is not a project dependency."""
    (work / "bench_app.py").write_text(
        "from pathlib import Path\n"
        "from wheelhouse.options import ServerOptions\n"
        "from wheelhouse.server.app import create_app\n"
        f"app = create_app(ServerOptions(store=Path({str(store)!r})))\n"
    )
    port = free_port()
    # granian runs its own interpreter: give it this one's packages, and wheelhouse itself by
    # its directory (an editable install is a finder hook that PYTHONPATH does not carry).
    source_root = Path(wheelhouse.__file__).resolve().parent.parent
    paths = [str(work), str(source_root), *(p for p in sys.path if p and Path(p).is_dir())]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    proc = subprocess.Popen(
        [exe, "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--no-ws", "--log-level", "error", "bench_app:app"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def lua_script(work: Path, names: list[str]) -> Path:
    """Rotate over every project page, each wrk thread starting at its own offset."""
    paths = ",\n".join(f'  "/simple/{n}/"' for n in names)
    script = work / "rotate.lua"
    script.write_text(
        f"local paths = {{\n{paths}\n}}\n"
        "local i = math.random(#paths)\n"
        f'wrk.headers["Accept"] = "{PIP_ACCEPT}"\n'
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )
    return script


def run_wrk(base: str, script: Path, args: argparse.Namespace, duration: float) -> Result:
    out = subprocess.run(
        ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{duration:g}s",
         f"--timeout={args.timeout:g}s", "-s", str(script), base + "/"],
        capture_output=True, text=True, timeout=duration + args.timeout + 30, check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    latency = re.search(r"Latency\s+(\S+)", out)
    errors = [line.strip() for line in out.splitlines()
              if "Socket errors" in line or "Non-2xx" in line]
    return Result(
        server="",
        requests_per_second=float(rps.group(1)) if rps else 0.0,
        latency=latency.group(1) if latency else "?",
        errors="; ".join(errors) or "none",
    )


def check_page(base: str, name: str) -> None:
    """Both servers must really serve the page being measured, or the numbers mean nothing."""
    req = urllib.request.Request(f"{base}/simple/{name}/", headers={"Accept": PIP_ACCEPT})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
    wheel = re.sub(r"[-_.]+", "_", name) + "-1.0-py3-none-any.whl"
    if resp.status != 200 or wheel.encode() not in body:
        raise SystemExit(f"{base} does not list {wheel} on /simple/{name}/")


Starter = Callable[[], tuple["subprocess.Popen[str]", str]]


def bench(label: str, start: Starter, args: argparse.Namespace, script: Path,
          names: list[str]) -> Result:
    proc, base = start()
    try:
        wait_until_up(base + f"/simple/{names[0]}/")
        check_page(base, names[-1])
        run_wrk(base, script, args, args.warmup)  # let caches, scans and threads settle
        result = run_wrk(base, script, args, args.duration)
    finally:
        stop(proc)
    print(f"  {label:<12} {result.requests_per_second:>10.1f} req/s  "
          f"latency avg {result.latency:<8} errors: {result.errors}", flush=True)
    return Result(server=label, requests_per_second=result.requests_per_second,
                  latency=result.latency, errors=result.errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0, help="wrk request timeout")
    parser.add_argument("--server-threads", type=int, default=32)
    parser.add_argument("--granian", default=shutil.which("granian"),
                        help="granian executable: also measure the app under it (optional)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")

    with tempfile.TemporaryDirectory(prefix="wheelhouse-bench-") as tmp:
        work = Path(tmp)
        store, wheels, names = build_fixture(work, args.projects)
        script = lua_script(work, names)
        ours: list[float] = []
        theirs: list[float] = []
        granian: list[float] = []
        print(f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration:g}s, "
              f"{len(names)} project pages in rotation, pip's Accept header", flush=True)
        for round_no in range(1, args.rounds + 1):
            print(f"round {round_no}/{args.rounds}", flush=True)
            ours.append(bench("wheelhouse", lambda: start_ours(store, args.server_threads),
                              args, script, names).requests_per_second)
            theirs.append(bench("pypiserver", lambda: start_pypiserver(wheels),
                                args, script, names).requests_per_second)
            if args.granian:
                granian.append(bench("app+granian",
                                     lambda: start_granian(args.granian, work, store),
                                     args, script, names).requests_per_second)
        ours_median = statistics.median(ours)
        theirs_median = statistics.median(theirs)
        print()
        print(f"median wheelhouse  {ours_median:10.1f} req/s")
        print(f"median pypiserver  {theirs_median:10.1f} req/s")
        if granian:
            print(f"median app+granian {statistics.median(granian):10.1f} req/s "
                  "(create_app under granian, 1 worker; not what serve() runs)")
        if theirs_median > 0:
            print(f"ratio wheelhouse/pypiserver: {ours_median / theirs_median:.1f}x")
        else:
            print("ratio: pypiserver completed no requests")


if __name__ == "__main__":
    main()
