"""The index at scale: wheelhouse's production server against pypiserver, devpi-server and
nginx serving ``wheelhouse export`` of the same store.

    python bench/bench_index_scale.py                      # 5,000 projects, 50,000 wheels
    python bench/bench_index_scale.py --quick              # a few minutes, smaller numbers

Goals (the issue): requests/s on ``/simple/<project>/`` at least 5x pypiserver's and
devpi-server's and at least a quarter of nginx's; no errors at 256 connections; p99 latency
with 50,000 files within 1.2x of that with 500; installing a 50-wheel lockfile with pip and
with uv from our server within 1.1x of the time from the nginx export.

What runs, all on 127.0.0.1, one server at a time, every load bounded by --duration:
- a real store of tiny valid wheels (bench/gen_store.py): --projects projects, --files
  wheels, one project (bench-big) with --big-files of them, the rest ~10 files each; and a
  small store of --small-files wheels with the same page sizes (the latency comparison);
- ours: ``serve_production`` (granian, --workers x --threads), access log off;
- nginx: ``wheelhouse export`` of the store behind server/nginx.conf, access log off;
- pypiserver (with its cache extra, on waitress) over a flat directory of hard links;
- devpi-server, filled with ``devpi-import`` of a generated dump (uploading through its API
  runs at ~6 files/s here, hours for 50,000); --devpi-files caps how many files it gets;
- wrk -t1 with a Lua script rotating over --sample ordinary projects: ``html`` (Accept:
  text/html), ``json`` (pip's Accept), ``304`` (pip's Accept and each page's ETag),
  ``big`` (the 2,000-file page, JSON), ``file`` (downloading small wheels), and ``c256``
  (json at 256 connections, where errors are counted).
Peers are installed into a throwaway venv (--peers, default /tmp/bench-peers) if missing.
Needs ``wrk`` and ``nginx`` (Debian packages) and granian. The machine has 2 cores shared
with wrk: compare the ratios, measured in the same run; medians of --rounds rounds.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
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
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gen_store import BIG_PROJECT, Layout, populate

from wheelhouse.export import export
from wheelhouse.store.store import Store

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
SCENARIOS = ("html", "json", "304", "big", "file", "c256")
PEERS = ("pypiserver", "devpi")

LAUNCH_OURS = """
import sys
from pathlib import Path
from wheelhouse.options import ServerOptions
from wheelhouse.server.production import serve_production
serve_production(ServerOptions(store=Path(sys.argv[1]), host="127.0.0.1", port=0,
                               workers=int(sys.argv[2]), threads=int(sys.argv[3]),
                               access_log=False),
                 on_ready=lambda line: print(line, flush=True))
"""


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def client_env() -> dict[str, str]:
    """For pip, uv and the peers: none of this machine's extra pip sources."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "WHEELHOUSE_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never", NO_PROXY="127.0.0.1,localhost")
    return env


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- fixtures ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Fixture:
    """A store and everything derived from it for the peers."""

    label: str
    layout: Layout
    store: Path
    export: Path
    flat: Path

    def sample(self, count: int) -> list[str]:
        """``count`` ordinary projects spread evenly over the index."""
        names = self.layout.ordinary()
        if count >= len(names):
            return names
        step = len(names) / count
        return [names[int(i * step)] for i in range(count)]


def make_fixture(work: Path, label: str, layout: Layout) -> Fixture:
    root = work / label
    store = root / "store"
    fixture = Fixture(label=label, layout=layout, store=store, export=root / "web" / "export",
                      flat=root / "flat")
    if (store / "catalogue.sqlite3").is_file() and len(Store(store, readonly=True).files()) \
            == layout.files:
        log(f"[{label}] reusing the store at {store}")
    else:
        shutil.rmtree(root, ignore_errors=True)
        log(f"[{label}] publishing {layout.files} wheels in {layout.projects} projects ...")
        seconds = populate(Store(store), layout)
        log(f"[{label}] published in {seconds:.1f} s ({layout.files / seconds:.0f} files/s)")
    started = time.monotonic()
    summary = export(store, fixture.export)
    log(f"[{label}] wheelhouse export: {summary.files} files in "
        f"{time.monotonic() - started:.1f} s ({summary.linked} linked, {summary.reused} kept, "
        f"{summary.copied} copied)")
    if not fixture.flat.is_dir():
        tmp = root / "flat.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in Store(store, readonly=True).files():
            os.link(store / "files" / f.project / f.filename, tmp / f.filename)
        tmp.rename(fixture.flat)
    return fixture


def ensure_peers(venv: Path) -> None:
    have = all((venv / "bin" / exe).exists()
               for exe in ("pypi-server", "devpi-server", "devpi-init", "devpi-import"))
    if have:
        return
    log(f"installing pypiserver and devpi-server into {venv} ...")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The host's pip configuration is used on purpose here: it is only a download.
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "pypiserver[cache]",
                    "waitress", "devpi-server"], check=True)


def _http_json(method: str, url: str, body: object, auth: tuple[str, str] | None) -> int:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as e:
        return e.code


def build_devpi(work: Path, fixture: Fixture, venv: Path, max_files: int | None) -> Path:
    """A devpi server directory holding the fixture's files in index bench/dev (no mirror)."""
    serverdir = work / fixture.label / "devpi"
    if (serverdir / ".done").exists():
        log(f"[{fixture.label}] reusing devpi at {serverdir}")
        return serverdir
    shutil.rmtree(serverdir, ignore_errors=True)
    bin_dir = venv / "bin"
    template = work / fixture.label / "devpi-template"
    shutil.rmtree(template, ignore_errors=True)
    # A template server gives us a real user and index definition to import into.
    subprocess.run([str(bin_dir / "devpi-init"), "--serverdir", str(template),
                    "--no-root-pypi", "--root-passwd", "bench"],
                   check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen(
        [str(bin_dir / "devpi-server"), "--serverdir", str(template), "--host", "127.0.0.1",
         "--port", str(port), "--offline-mode"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base + "/+api", 120)
        assert _http_json("PUT", f"{base}/bench", {"password": "bench"}, None) in (200, 201)
        assert _http_json("PUT", f"{base}/bench/dev", {"bases": [], "volatile": False},
                          ("bench", "bench")) in (200, 201)
    finally:
        stop(proc)
    dump_tmpl = work / fixture.label / "devpi-template-dump"
    shutil.rmtree(dump_tmpl, ignore_errors=True)
    subprocess.run([str(bin_dir / "devpi-export"), "--serverdir", str(template),
                    str(dump_tmpl)], check=True, capture_output=True)
    tmpl = json.loads((dump_tmpl / "dataindex.json").read_text())

    dump = work / fixture.label / "devpi-dump"
    shutil.rmtree(dump, ignore_errors=True)
    dump.mkdir()
    files = Store(fixture.store, readonly=True).files()
    if max_files is not None and len(files) > max_files:
        keep = set(fixture.sample(len(fixture.layout.ordinary())))
        files = [f for f in files if f.project == BIG_PROJECT or f.project in keep][:max_files]
    projects: dict[str, dict[str, dict[str, str]]] = {}
    entries = []
    stamp = "Mon, 01 Jan 2024 00:00:00 GMT"
    for f in files:
        projects.setdefault(f.project, {})[f.version] = {
            "name": f.project, "version": f.version,
            "requires_python": f.requires_python or "",
        }
        rel = f"bench/dev/{f.project}/{f.version}/{f.filename}"
        (dump / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(fixture.store / "files" / f.project / f.filename, dump / rel)
        entries.append({
            "version": f.version, "type": "releasefile", "projectname": f.project,
            "relpath": rel, "log": [],
            "entrymapping": {"last_modified": stamp, "hash_spec": f"sha256={f.sha256}",
                             "hashes": {"sha256": f.sha256}, "project": f.project,
                             "version": f.version},
        })
    data = {k: v for k, v in tmpl.items() if k != "indexes"}
    data["indexes"] = {"bench/dev": {"indexconfig": tmpl["indexes"]["bench/dev"]["indexconfig"],
                                     "projects": projects, "files": entries}}
    (dump / "dataindex.json").write_text(json.dumps(data))
    log(f"[{fixture.label}] devpi-import of {len(entries)} files ...")
    started = time.monotonic()
    subprocess.run([str(bin_dir / "devpi-import"), "--serverdir", str(serverdir),
                    "--no-root-pypi", "--hard-links", str(dump)],
                   check=True, capture_output=True)
    log(f"[{fixture.label}] devpi-import took {time.monotonic() - started:.0f} s")
    (serverdir / ".done").write_text(str(len(entries)))
    shutil.rmtree(template, ignore_errors=True)
    shutil.rmtree(dump_tmpl, ignore_errors=True)
    return serverdir


# -- servers ----------------------------------------------------------------------------------


def wait_until_up(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                resp.read()
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not come up within {timeout:.0f} s")
        time.sleep(0.2)


@dataclass(frozen=True, kw_only=True)
class Running:
    base: str
    simple: str  # the simple index's path, e.g. "/simple/"
    files: list[str]  # paths of a few small wheels, for the "file" scenario


Starter = Callable[[], AbstractContextManager[Running]]


def ours(fixture: Fixture, workers: int, threads: int, sample: list[str]) -> Starter:
    @contextmanager
    def start() -> Iterator[Running]:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH_OURS, str(fixture.store), str(workers),
             str(threads)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=client_env(),
        )
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


def store_file_paths(fixture: Fixture, sample: list[str]) -> list[str]:
    store = Store(fixture.store, readonly=True)
    paths = []
    for name in sample[:200]:
        f = store.files(name)[0]
        paths.append(f"/files/{f.project}/{f.filename}")
    return paths


def nginx(fixture: Fixture, work: Path, sample: list[str]) -> Starter:
    @contextmanager
    def start() -> Iterator[Running]:
        prefix = Path(tempfile.mkdtemp(prefix="nginx-", dir=work))
        (prefix / "logs").mkdir()
        (prefix / "tmp").mkdir()
        (prefix / "export").symlink_to(fixture.export)
        port = free_port()
        conf = (REPO / "server" / "nginx.conf").read_text()
        conf, n = re.subn(r"(?m)^(\s*)listen\s+\S+;", rf"\1listen 127.0.0.1:{port};", conf)
        assert n == 1
        # Like ours: no per-request log line.
        conf = re.sub(r"(?m)^(\s*)access_log\s+\S+;", r"\1access_log off;", conf)
        (prefix / "nginx.conf").write_text(conf)
        directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        proc = subprocess.Popen([exe, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                 "-g", directives],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base + "/health", 30)
            yield Running(base=base, simple="/simple/", files=store_file_paths(fixture, sample))
        finally:
            stop(proc)
            shutil.rmtree(prefix, ignore_errors=True)
    return start


def pypiserver(fixture: Fixture, venv: Path, sample: list[str]) -> Starter:
    @contextmanager
    def start() -> Iterator[Running]:
        port = free_port()
        proc = subprocess.Popen(
            # No fallback: an unknown name must never be redirected off this machine.
            [str(venv / "bin" / "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(port),
             "--disable-fallback", "-a", ".", "-P", ".", str(fixture.flat)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=client_env(),
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(f"{base}/simple/{sample[0]}/", 600)
            store = Store(fixture.store, readonly=True)
            files = [f"/packages/{store.files(n)[0].filename}" for n in sample[:200]]
            yield Running(base=base, simple="/simple/", files=files)
        finally:
            stop(proc)
    return start


def devpi(serverdir: Path, venv: Path, sample: list[str]) -> Starter:
    @contextmanager
    def start() -> Iterator[Running]:
        port = free_port()
        proc = subprocess.Popen(
            [str(venv / "bin" / "devpi-server"), "--serverdir", str(serverdir), "--host",
             "127.0.0.1", "--port", str(port), "--offline-mode"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=client_env(),
        )
        try:
            base = f"http://127.0.0.1:{port}"
            simple = "/bench/dev/+simple/"
            wait_until_up(f"{base}{simple}{sample[0]}/", 600)
            files = []
            for name in sample[:200]:
                page = f"{simple}{name}/"
                with urllib.request.urlopen(base + page, timeout=60) as resp:
                    hrefs = re.findall(r'href="([^"#]+)', resp.read().decode())
                if hrefs:
                    files.append(urllib.parse.urljoin(page, hrefs[0]))
            yield Running(base=base, simple=simple, files=files)
        finally:
            stop(proc)
    return start


# -- load -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Measurement:
    rps: float
    p99_ms: float
    errors: int  # socket errors (connect, read, write, timeout) plus non-2xx/3xx answers
    requests: int


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(out: str) -> Measurement:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"(?m)^\s*99%\s+([\d.]+)(us|ms|s|m)\b", out)
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    done = re.search(r"(\d+) requests in", out)
    return Measurement(
        requests=int(done.group(1)) if done else 0,
        rps=float(rps.group(1)) if rps else 0.0,
        p99_ms=(float(p99.group(1)) * _UNIT_MS[p99.group(2)]
                if p99 and done and int(done.group(1)) > 0 else float("nan")),
        errors=errors,
    )


def lua(path: Path, paths: Sequence[str], accept: str, etags: Sequence[str] | None) -> Path:
    def table(items: Sequence[str]) -> str:
        return "{\n" + ",\n".join(json.dumps(i) for i in items) + "\n}"

    conditional = 'h["If-None-Match"] = etags[i]\n' if etags else ""
    path.write_text(
        f"local paths = {table(paths)}\n"
        f"local etags = {table(etags) if etags else 'nil'}\n"
        "local i = math.random(#paths)\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        f"  local h = {{[\"Accept\"] = {json.dumps(accept)}}}\n"
        f"  {conditional}"
        '  return wrk.format("GET", paths[i], h)\n'
        "end\n"
    )
    return path


def run_wrk(base: str, script: Path, connections: int, duration: float,
            timeout: float) -> Measurement:
    out = subprocess.run(
        # wrk takes whole seconds only
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
         f"--timeout={max(1, round(timeout))}s",
         "--latency", "-s", str(script), base + "/"],
        capture_output=True, text=True, timeout=duration + timeout + 60, check=True,
    ).stdout
    return parse_wrk(out)


def etags_for(base: str, paths: Sequence[str], accept: str) -> list[str] | None:
    """Each page's ETag, fetched over one kept-alive connection; None if the server sends
    none (then the 304 scenario does not apply to it)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    tags = []
    try:
        for path in paths:
            conn.request("GET", path, headers={"Accept": accept})
            resp = conn.getresponse()
            resp.read()
            etag = resp.getheader("ETag")
            if etag is None:
                return None
            tags.append(etag)
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=120)
        # Prove the server answers 304 to them, or the scenario would measure 200s.
        conn.request("GET", paths[0], headers={"Accept": accept, "If-None-Match": tags[0]})
        resp = conn.getresponse()
        resp.read()
        return tags if resp.status == 304 else None
    finally:
        conn.close()


@dataclass
class Results:
    runs: dict[tuple[str, str], list[Measurement]] = field(default_factory=dict)
    single: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, server: str, scenario: str, m: Measurement) -> None:
        self.runs.setdefault((server, scenario), []).append(m)

    def add_single(self, server: str, what: str, ms: float) -> None:
        self.single.setdefault((server, what), []).append(ms)

    def single_ms(self, server: str, what: str) -> float | None:
        values = self.single.get((server, what))
        return statistics.median(values) if values else None

    def rps(self, server: str, scenario: str) -> float | None:
        runs = self.runs.get((server, scenario))
        return statistics.median(m.rps for m in runs) if runs else None

    def p99(self, server: str, scenario: str) -> float | None:
        runs = self.runs.get((server, scenario))
        return statistics.median(m.p99_ms for m in runs) if runs else None

    def errors(self, server: str, scenario: str) -> int | None:
        runs = self.runs.get((server, scenario))
        return max(m.errors for m in runs) if runs else None


class Server:
    """A started server that can be restarted: a server still busy with a backlog of earlier
    requests (pypiserver at scale needs minutes to drain one) would spoil the next scenario."""

    def __init__(self, starter: Starter) -> None:
        self._starter = starter
        self._cm: AbstractContextManager[Running] | None = None
        self.running = self._start()

    def _start(self) -> Running:
        self._cm = self._starter()
        return self._cm.__enter__()

    def close(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = None

    def settle(self, probe: str) -> None:
        """Restart unless an idle request to ``probe`` is answered within a second."""
        try:
            with urllib.request.urlopen(self.running.base + probe, timeout=1.0) as resp:
                resp.read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass
        log("    (server still busy with the last load: restarting it)")
        self.close()
        self.running = self._start()


def single_request_ms(base: str, path: str, accept: str) -> float:
    """One request on a fresh connection, no other load: what one client waits."""
    req = urllib.request.Request(base + path, headers={"Accept": accept})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as resp:
        resp.read()
    return (time.perf_counter() - started) * 1000


def measure(label: str, starter: Starter, sample: list[str], big: bool,
            args: argparse.Namespace, results: Results, work: Path,
            scenarios: Sequence[str] = SCENARIOS) -> None:
    server = Server(starter)
    try:
        srv = server.running
        pages = [f"{srv.simple}{name}/" for name in sample]
        scripts = work / "lua"
        scripts.mkdir(exist_ok=True)
        html = lua(scripts / f"{label}-html.lua", pages, "text/html", None)
        jsn = lua(scripts / f"{label}-json.lua", pages, PIP_ACCEPT, None)
        results.add_single(label, "page", single_request_ms(srv.base, pages[0], PIP_ACCEPT))
        if big:
            results.add_single(label, "big", single_request_ms(
                srv.base, f"{srv.simple}{BIG_PROJECT}/", PIP_ACCEPT))
        plan: list[tuple[str, Path, int]] = []
        if "html" in scenarios:
            plan.append(("html", html, args.connections))
        if "json" in scenarios:
            plan.append(("json", jsn, args.connections))
        if "304" in scenarios:
            tags = etags_for(srv.base, pages, PIP_ACCEPT)
            if tags is None:
                results.notes[label] = "no ETag/304 on simple pages"
            else:
                plan.append(("304", lua(scripts / f"{label}-304.lua", pages, PIP_ACCEPT, tags),
                             args.connections))
        if "big" in scenarios and big:
            plan.append(("big", lua(scripts / f"{label}-big.lua",
                                    [f"{srv.simple}{BIG_PROJECT}/"], PIP_ACCEPT, None),
                         args.connections))
        if "file" in scenarios and srv.files:
            plan.append(("file", lua(scripts / f"{label}-file.lua", srv.files, "*/*", None),
                         args.connections))
        if "c256" in scenarios:
            plan.append(("c256", jsn, 256))
        run_wrk(server.running.base, jsn, args.connections, args.warmup, args.timeout)
        server.settle(pages[0])
        for scenario, script, connections in plan:
            m = run_wrk(server.running.base, script, connections, args.duration, args.timeout)
            server.settle(pages[0])
            if m.requests < 100 and args.slow_duration > args.duration:
                # Too few answers to mean anything: measure this slow server for longer.
                m = run_wrk(server.running.base, script, connections, args.slow_duration,
                            args.timeout)
                server.settle(pages[0])
            results.add(label, scenario, m)
            log(f"  {label:<12} {scenario:<5} {m.rps:>10.1f} req/s  p99 {m.p99_ms:>9.2f} ms  "
                f"errors {m.errors:<6} ({m.requests} answers)")
    finally:
        server.close()


# -- installs ---------------------------------------------------------------------------------


def lock_store(work: Path, lock: Path) -> Path | None:
    store = work / "lock" / "store"
    if (store / "catalogue.sqlite3").is_file():
        return store
    log(f"building a store for {lock} with `wheelhouse build` (PyPI) ...")
    result = subprocess.run(
        [sys.executable, "-m", "wheelhouse", "build", str(lock), "--store", str(store)],
        capture_output=True, text=True, env=client_env(), check=False,
    )
    if result.returncode != 0:
        log(f"  could not build it, skipping the install timings:\n{result.stderr[-2000:]}")
        return None
    return store


def time_install(tool: str, index: str, lock: Path, work: Path) -> float:
    venv = Path(tempfile.mkdtemp(prefix="venv-", dir=work))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = venv / "bin" / "python"
        if tool == "pip":
            cmd = [sys.executable, "-m", "pip", "--python", str(python), "install",
                   "--no-cache-dir", "--only-binary", ":all:", "--index-url", index,
                   "-r", str(lock)]
        else:
            uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or "uv"
            cmd = [uv, "pip", "install", "--no-cache", "--python", str(python),
                   "--index-url", index, "-r", str(lock)]
        started = time.perf_counter()
        subprocess.run(cmd, check=True, env=client_env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def installs(work: Path, args: argparse.Namespace) -> dict[tuple[str, str], list[float]]:
    store = lock_store(work, args.lock)
    times: dict[tuple[str, str], list[float]] = {}
    if store is None:
        return times
    layout = Layout(projects=1, files=1, big_files=1)  # only for the Fixture record
    fixture = Fixture(label="lock", layout=layout, store=store, export=work / "lock" / "export",
                      flat=work / "lock" / "flat")
    export(store, fixture.export)
    servers = {"ours": ours(fixture, args.workers, args.threads, []),
               "nginx": nginx(fixture, work, [])}
    for run in range(args.install_runs):
        # Alternate the order, so neither server always runs on a warmer page cache.
        order = list(servers.items()) if run % 2 == 0 else list(reversed(servers.items()))
        for label, starter in order:
            with starter() as srv:
                for tool in ("pip", "uv"):
                    seconds = time_install(tool, f"{srv.base}/simple/", args.lock, work)
                    times.setdefault((label, tool), []).append(seconds)
                    log(f"  install {tool:<3} from {label:<5} {seconds:6.2f} s")
    return times


# -- report -----------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(results: Results, install_times: dict[tuple[str, str], list[float]],
           args: argparse.Namespace, devpi_note: str) -> None:
    servers = [s for s in ("ours", "nginx", "pypiserver", "devpi", "ours@small",
                           "nginx@small") if any(k[0] == s for k in results.runs)]
    if servers:
        report_load(results, servers, args, devpi_note)
    log("")
    for tool in ("pip", "uv"):
        a, b = install_times.get(("ours", tool)), install_times.get(("nginx", tool))
        if a and b:
            r = statistics.median(a) / statistics.median(b)
            log(f"  install lock50 with {tool:<3}: median ours {statistics.median(a):.2f} s, "
                f"nginx {statistics.median(b):.2f} s, ratio {r:.2f}x   goal <= 1.1x  "
                f"{'PASS' if r <= 1.1 else 'FAIL'}   (fastest: ours {min(a):.2f} s, nginx "
                f"{min(b):.2f} s, {len(a)} runs each)")


def report_load(results: Results, servers: list[str], args: argparse.Namespace,
                devpi_note: str) -> None:
    log("")
    log(f"median of {args.rounds} round(s); wrk -t1 -c{args.connections} (c256: 256), "
        f"{args.duration:g} s each; req/s | p99 ms | max errors")
    log(f"{'server':<12}" + "".join(f"{s:>24}" for s in SCENARIOS))
    for server in servers:
        cells = []
        for scenario in SCENARIOS:
            rps = results.rps(server, scenario)
            cells.append("-" if rps is None else
                         f"{rps:.0f} | {results.p99(server, scenario):.1f} | "
                         f"{results.errors(server, scenario)}")
        log(f"{server:<12}" + "".join(f"{c:>24}" for c in cells))
    log("one request alone (ms): " + ", ".join(
        f"{server} page {fmt(results.single_ms(server, 'page'), '.1f')}"
        + (f" big {fmt(results.single_ms(server, 'big'), '.1f')}"
           if results.single_ms(server, "big") is not None else "")
        for server in servers))
    for server, note in results.notes.items():
        log(f"  {server}: {note}")
    if devpi_note:
        log(f"  devpi: {devpi_note}")

    log("")
    log("goals (ratios of medians from this run):")

    def ratio(a: float | None, b: float | None) -> float | None:
        if a is None or b is None:
            return None
        if b == 0:
            # The peer completed no request in the whole run.
            return float("inf") if a > 0 else None
        return a / b

    def verdict(value: float | None, goal: float, higher: bool) -> str:
        if value is None:
            return "n/a"
        ok = value >= goal if higher else value <= goal
        return "PASS" if ok else "FAIL"

    for peer in PEERS:
        for scenario in ("html", "json", "big"):
            r = ratio(results.rps("ours", scenario), results.rps(peer, scenario))
            log(f"  ours/{peer:<10} {scenario:<5} req/s  {fmt(r, '>9.1f')}x   goal >= 5x   "
                f"{verdict(r, 5, True)}")
    for scenario in ("html", "json", "304", "big", "file"):
        r = ratio(results.rps("ours", scenario), results.rps("nginx", scenario))
        goal = "goal >= 0.25x" if scenario in ("html", "json") else "(reference)"
        log(f"  ours/nginx      {scenario:<5} req/s  {fmt(r, '>9.2f')}x   {goal:<13} "
            f"{verdict(r, 0.25, True) if scenario in ('html', 'json') else ''}")
    for server in ("ours", "nginx", "pypiserver", "devpi"):
        errors = results.errors(server, "c256")
        if errors is not None:
            log(f"  errors at 256 connections, {server:<10} {errors:>9}   goal 0        "
                f"{'PASS' if errors == 0 else 'FAIL' if server == 'ours' else ''}")
    for server in ("ours", "nginx"):
        for scenario in ("html", "json"):
            r = ratio(results.p99(server, scenario), results.p99(f"{server}@small", scenario))
            log(f"  p99 {args.files} files / {args.small_files} files, {server:<5} "
                f"{scenario:<4} {fmt(r, '>6.2f')}x   goal <= 1.2x  "
                f"{verdict(r, 1.2, False) if server == 'ours' else '(reference)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=5000)
    parser.add_argument("--files", type=int, default=50000)
    parser.add_argument("--big-files", type=int, default=2000)
    parser.add_argument("--small-files", type=int, default=500)
    parser.add_argument("--sample", type=int, default=1000,
                        help="ordinary project pages in the rotation")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0, help="wrk's request timeout")
    parser.add_argument("--slow-duration", type=float, default=30.0,
                        help="measure again this long when a run got under 100 answers")
    parser.add_argument("--peer-rounds", type=int, default=1,
                        help="rounds for pypiserver and devpi (orders of magnitude slower)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--peers", type=Path, default=Path("/tmp/bench-peers"),
                        help="venv for pypiserver and devpi-server (created if missing)")
    parser.add_argument("--devpi-files", type=int, default=None,
                        help="give devpi only this many files (the big project first)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["load", "pypiserver", "devpi", "nginx", "small", "install"],
                        help="leave out a part (load: every wrk measurement)")
    parser.add_argument("--lock", type=Path, default=HERE / "lock50.txt")
    parser.add_argument("--install-runs", type=int, default=7)
    parser.add_argument("--work", type=Path, default=None,
                        help="keep fixtures here between runs (default: a temporary dir)")
    parser.add_argument("--quick", action="store_true",
                        help="500 projects, 5,000 files, 1 round of 3 s")
    args = parser.parse_args()
    if args.quick:
        args.projects, args.files, args.big_files = 500, 5000, 500
        args.sample, args.rounds, args.duration, args.warmup = 200, 1, 3.0, 1.0
        args.install_runs = 1
    for tool in ("wrk",) + (() if "nginx" in args.skip else ("nginx",)):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} not found: apt-get install -y {tool}")

    work = args.work or Path(tempfile.mkdtemp(prefix="wheelhouse-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        big = Layout(projects=args.projects, files=args.files, big_files=args.big_files)
        per_project = max(1, round((args.files - args.big_files) / max(1, args.projects - 1)))
        small = Layout(projects=max(2, args.small_files // per_project), files=args.small_files,
                       big_files=per_project)
        full = make_fixture(work, "full", big)
        tiny = None if "small" in args.skip else make_fixture(work, "small", small)
        peers = [p for p in PEERS if p not in args.skip]
        devpi_dir = None
        devpi_note = ""
        if peers:
            ensure_peers(args.peers)
        if "devpi" in peers:
            devpi_dir = build_devpi(work, full, args.peers, args.devpi_files)
            held = int((devpi_dir / ".done").read_text())
            if held < args.files:
                devpi_note = (f"holds {held} of the {args.files} files (--devpi-files): the "
                              "big project and the sampled pages")
        sample = full.sample(args.sample)
        results = Results()
        plan: list[tuple[str, Starter, list[str], bool]] = [
            ("ours", ours(full, args.workers, args.threads, sample), sample, True)]
        if "nginx" not in args.skip:
            plan.append(("nginx", nginx(full, work, sample), sample, True))
        if "pypiserver" in peers:
            plan.append(("pypiserver", pypiserver(full, args.peers, sample), sample, True))
        if devpi_dir is not None:
            plan.append(("devpi", devpi(devpi_dir, args.peers, sample), sample, True))
        if tiny is not None:
            small_sample = tiny.sample(args.sample)
            plan.append(("ours@small", ours(tiny, args.workers, args.threads, small_sample),
                         small_sample, False))
            if "nginx" not in args.skip:
                plan.append(("nginx@small", nginx(tiny, work, small_sample), small_sample,
                             False))
        log(f"ours: granian, {args.workers} workers x {args.threads} threads; "
            f"{len(sample)} pages in rotation")
        for round_no in range(1, 0 if "load" in args.skip else args.rounds + 1):
            log(f"round {round_no}/{args.rounds}")
            for label, starter, pages, with_big in plan:
                if label in PEERS and round_no > args.peer_rounds:
                    continue
                scenarios = SCENARIOS if "@" not in label else ("html", "json")
                measure(label, starter, pages, with_big, args, results, work, scenarios)
        install_times = {} if "install" in args.skip else installs(work, args)
        report(results, install_times, args, devpi_note)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
