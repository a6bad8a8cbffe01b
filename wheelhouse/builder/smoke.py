"""Proving a built wheel works before it is published: installed with its dependencies into a
clean environment of the target (a compiler-less consumer container, or a fresh directory on
this machine for native builds), its top-level modules import and its programs link.

A package may replace the import with its own command (``test`` in its settings), as
cibuildwheel's test-command does; the program check always runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from wheelhouse.builder.runner import Runner

#: Run inside the environment with the wheel installed in ROOT (also on ``PYTHONPATH``): load
#: each extension module of the wheel on its own, import its top-level modules, then make the
#: dynamic loader resolve every program the install put there (which finds what a repair can
#: break, like a removed libpython). A module the wheel does not contain being absent (a
#: dependency not available here yet) is reported but is not a failure.
CHECK_SCRIPT = r"""
import glob, importlib, importlib.util, json, os, subprocess, sys
root, spec = sys.argv[1], json.loads(sys.argv[2])
own = set(spec["top"]) | {e.split(".")[0] for e in spec["ext"]}
failed = 0
def report(what, e):
    global failed
    if isinstance(e, ModuleNotFoundError) and e.name and e.name.split(".")[0] not in own:
        print(f"{what}: needs {e.name}, which is not installed here (not checked further)")
        return
    failed += 1
    print(f"{what} failed: {type(e).__name__}: {e}")
for dotted in spec["ext"]:
    base = os.path.join(root, *dotted.split(".")[:-1])
    name = dotted.rsplit(".", 1)[-1]
    paths = [p for p in glob.glob(os.path.join(glob.escape(base), name + ".*so"))]
    try:
        if not paths:
            raise ImportError(f"extension module file for {dotted} is not installed")
        s = importlib.util.spec_from_file_location(dotted, paths[0])
        s.loader.exec_module(importlib.util.module_from_spec(s))
    except BaseException as e:
        report(f"loading the extension {dotted}", e)
for name in spec["top"]:
    try:
        importlib.import_module(name)
    except BaseException as e:
        report(f"import {name}", e)
musl = sorted(glob.glob("/lib/ld-musl-*.so.1"))
for top, _dirs, files in os.walk(root):
    for f in files:
        path = os.path.join(top, f)
        if ".so" in f or not os.access(path, os.X_OK) or os.path.islink(path):
            continue
        with open(path, "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
        cmd = [musl[0], "--list", path] if musl else ["ldd", "-r", path]
        out = subprocess.run(cmd, capture_output=True, text=True)
        bad = [ln.strip() for ln in (out.stdout + out.stderr).splitlines()
               if "undefined symbol" in ln or "symbol not found" in ln or "=> not found" in ln]
        if bad:
            failed += 1
            print(f"program {os.path.relpath(path, root)} cannot run:")
            print("\n".join(bad[:5]))
import platform, sysconfig
print("wheelhouse-interpreter: " + json.dumps({
    "python": platform.python_version(),
    "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "gil_enabled": getattr(sys, "_is_gil_enabled", lambda: True)()}))
sys.exit(1 if failed else 0)
"""

#: the line CHECK_SCRIPT ends with: the interpreter that ran the check, as it says.
_INTERPRETER = "wheelhouse-interpreter: "


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    ok: bool
    #: what the check printed (the import error, the unresolved symbols).
    output: str = ""
    #: the full version of the interpreter the check ran in, as it reported it.
    python: str | None = None
    #: a free-threaded interpreter that ran the check.
    free_threaded: bool = False
    #: on a free-threaded interpreter: whether the GIL was on after the imports (an
    #: extension that does not declare free-threading support turns it back on).
    gil_enabled: bool | None = None

    @property
    def summary(self) -> str:
        """``checked in CPython 3.14.10 (free-threaded; the imports re-enabled the GIL)``."""
        if self.python is None:
            return ""
        text = f"checked in CPython {self.python}"
        if self.free_threaded:
            text += (" (free-threaded; the imports re-enabled the GIL)" if self.gil_enabled
                     else " (free-threaded; the GIL stayed off)")
        return text


@dataclass(frozen=True, kw_only=True)
class Modules:
    """What a wheel makes importable: top-level names, and its extension modules (dotted)."""

    top: tuple[str, ...]
    extensions: tuple[str, ...]

    def argument(self) -> str:
        return json.dumps({"top": list(self.top), "ext": list(self.extensions)})


def wheel_modules(wheel: Path) -> Modules:
    """The wheel's top-level modules, and its extension modules: shared objects outside
    ``*.libs`` that export ``PyInit_<name>`` (read with pyelftools, which auditwheel uses)."""
    extensions = []
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            parts = PurePosixPath(info.filename).parts
            if (not info.filename.endswith(".so") or not parts
                    or parts[0].endswith((".libs", ".data", ".dist-info"))):
                continue
            stem = parts[-1].split(".", 1)[0]
            if _exports(zf.read(info), f"PyInit_{stem}"):
                extensions.append(".".join([*parts[:-1], stem]))
    return Modules(top=tuple(top_level_modules(wheel)), extensions=tuple(sorted(extensions)))


def _exports(elf: bytes, symbol: str) -> bool:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    try:
        section = ELFFile(io.BytesIO(elf)).get_section_by_name(".dynsym")
        if not isinstance(section, SymbolTableSection):
            return False
        return any(sym.name == symbol and sym["st_shndx"] != "SHN_UNDEF"
                   for sym in section.iter_symbols())
    except (ELFError, ValueError, KeyError):
        return False


def top_level_modules(wheel: Path) -> list[str]:
    """The importable names a wheel installs: the top-level packages and modules it contains,
    in the order of ``top_level.txt`` where it has one. That file may name modules the wheel
    does not hold at the top (bcrypt 3.2 lists ``_bcrypt``, a cffi module it installs as
    ``bcrypt/_bcrypt``), so only what the wheel holds is imported."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        contained = set()
        for name in names:
            first = PurePosixPath(name).parts[0]
            if first.endswith((".dist-info", ".data", ".libs")):
                continue
            if "/" in name:
                contained.add(first)
            elif name.endswith(".py"):
                contained.add(name[:-3])
            elif name.endswith(".so"):
                contained.add(name.split(".", 1)[0])
        listed = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/top_level.txt")]
        if listed:
            text = zf.read(listed[0]).decode("utf-8", "replace")
            found = {ln.strip().replace("/", ".") for ln in text.splitlines() if ln.strip()}
            kept = sorted(m for m in found
                          if m.split(".")[0] in contained and _importable(m.split(".")[0]))
            if kept:
                return kept
    return sorted(m for m in contained if _importable(m))


def _importable(name: str) -> bool:
    return name.isidentifier()


@dataclass(frozen=True, kw_only=True)
class CheckPaths:
    """Where the check's files are, as the runner sees them."""

    #: a directory of wheels: the new one and every wheel its closure needs.
    wheels: str
    #: an empty directory to install into.
    site: str
    #: CHECK_SCRIPT, written where the runner can read it.
    script: str


def check_wheel(
    runner: Runner, *, python: str, paths: CheckPaths, requirement: str, modules: Modules,
    test: str | None, env: Mapping[str, str], timeout: float, installer: str | None = None,
) -> CheckResult:
    """Install ``requirement`` from the wheels directory alone (with ``installer``'s pip,
    default ``python``'s), then run the check with ``python``."""
    base = [installer or python, "-m", "pip", "install", "--no-index", "--find-links",
            paths.wheels, "--target", paths.site, "--no-compile",
            "--disable-pip-version-check", "-q"]
    notes = ""
    install = runner.run([*base, requirement], log=None, env=env, timeout=timeout)
    if install.returncode != 0 and not install.timed_out:
        # Some dependency is not available as a wheel here yet (built later in the run, or
        # never): check the wheel on its own; imports of what is missing are not failures.
        notes = "installed without its dependencies (not all are available yet)\n"
        install = runner.run([*base, "--no-deps", requirement], log=None, env=env,
                             timeout=timeout)
    if install.returncode != 0 or install.timed_out:
        return CheckResult(ok=False, output="the wheel does not install:\n"
                           + _tail(install.output))
    run_env = {**env, "PYTHONPATH": paths.site,
               "PATH": f"{paths.site}/bin:" + env.get("PATH", _PATH)}
    outputs = [notes]
    if test:
        # A `python` on PATH, as cibuildwheel's test-command may assume.
        shim = f"mkdir -p {paths.site}/bin && ln -sf {python} {paths.site}/bin/python"
        done = runner.run(["sh", "-c", f"{shim} && cd {paths.site} && {test}"], log=None,
                          env=run_env, timeout=timeout)
        outputs.append(done.output)
        if done.returncode != 0 or done.timed_out:
            return CheckResult(ok=False, output=f"the test command failed (exit "
                               f"{done.returncode}): {test}\n" + _tail(done.output))
        modules = Modules(top=(), extensions=())
    done = runner.run([python, paths.script, paths.site, modules.argument()], log=None,
                      env=run_env, timeout=timeout)
    said = _interpreter(done.output)
    outputs.append("\n".join(ln for ln in done.output.splitlines()
                             if not ln.startswith(_INTERPRETER)))
    return CheckResult(ok=done.returncode == 0 and not done.timed_out,
                       output=_tail("\n".join(outputs)),
                       python=said.get("python"), free_threaded=bool(said.get("free_threaded")),
                       gil_enabled=said.get("gil_enabled") if said.get("free_threaded") else None)


def _interpreter(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith(_INTERPRETER):
            with contextlib.suppress(ValueError):
                data = json.loads(line.removeprefix(_INTERPRETER))
                if isinstance(data, dict):
                    return data
    return {}


_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
