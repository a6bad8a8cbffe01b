"""Lockfiles out: for one target, the store's files of its closure as a requirements file with
``--hash`` lines (``pip install --require-hashes``) and as a PEP 751 ``pylock.toml`` whose wheels
point at the index serving the store, so installers take the wheels built here.

A lock made against PyPI never admits a wheel built later (its hashes differ, and a pylock
installer must not pick files the lock does not name), so these are written from the store.
One file per target: markers cannot tell manylinux from musllinux, tags can, and a lock per
target stays exactly what was checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from wheelhouse import __version__
from wheelhouse.errors import UsageError
from wheelhouse.installable import Installable
from wheelhouse.simple.render import file_href
from wheelhouse.store.model import StoredFile
from wheelhouse.targets import Target


def base_url(url: str) -> str:
    """The server's root for any of its URLs: ``https://h/``, ``https://h/simple/`` or the
    upload URL ``https://h/legacy/`` all give ``https://h/``."""
    url = url.rstrip("/") + "/"
    for tail in ("simple/", "legacy/"):
        if url.endswith("/" + tail):
            return url[: -len(tail)]
    return url


def index_root(explicit: str | None, *, publish: str | None) -> str:
    """The root URL the lockfiles point at: ``--base-url``, else the config's ``publish``.
    Never a guess: the serve settings' host and port (127.0.0.1:8000 by default) say where a
    server *here* would listen, not where the index that installers reach runs, and a lock
    with the wrong URLs fails only later, on another machine."""
    url = explicit or publish
    if not url:
        raise UsageError(
            "lock does not know the URL of the index its lockfiles should point at",
            hint="pass --base-url https://wheels.example.com/ (the index's root or its /simple/ "
            "URL), or set `publish` in wheelhouse.toml to the index's upload URL",
        )
    return base_url(url)


def names(target: Target) -> tuple[str, str]:
    """The files written for ``target``: ``requirements.<id>.txt``, ``pylock.<id>.toml``
    (PEP 751's ``pylock.<name>.toml``)."""
    return f"requirements.{target}.txt", f"pylock.{target}.toml"


def requirements_text(result: Installable, *, base: str, inputs: Iterable[Path]) -> str:
    pins = sorted(result.files, key=lambda f: f.project)
    lines = [
        f"# Written by `wheelhouse lock` for {result.target} from "
        f"{', '.join(str(p) for p in inputs)}.",
        "# Every file named here is in the store; install with:",
        f"#   pip install --require-hashes --only-binary :all: --index-url {base}simple/ "
        f"-r {names(result.target)[0]}",
    ]
    for f in pins:
        lines.append(f"{f.project}=={f.version} \\")
        lines.append(f"    --hash=sha256:{f.sha256}")
    return "\n".join(lines) + "\n"


def environment_marker(target: Target) -> str:
    """What PEP 508 markers can say of a target (not its libc: its wheels' tags say that)."""
    return (f"sys_platform == 'linux' and platform_machine == '{target.arch}' "
            f"and python_version == '{target.python[0]}.{target.python[1]}'")


def pylock_text(result: Installable, *, base: str, inputs: Iterable[Path]) -> str:
    t = result.target
    out = [
        f"# Written by `wheelhouse lock` for {t} from {', '.join(str(p) for p in inputs)}.",
        f"# Install with: pip install -r {names(t)[1]}  (pip >= 26.1), or",
        f"#               uv pip install -r {names(t)[1]}",
        'lock-version = "1.0"',
        f"environments = [{_s(environment_marker(t))}]",
        f"requires-python = {_s(f'=={t.python[0]}.{t.python[1]}.*')}",
        f"created-by = {_s('wheelhouse')}",
    ]
    for f in sorted(result.files, key=lambda f: f.project):
        out += ["", "[[packages]]", f"name = {_s(f.project)}", f"version = {_s(f.version)}",
                f"index = {_s(base + 'simple/')}"]
        if f.requires_python:
            out.append(f"requires-python = {_s(f.requires_python)}")
        out += ["", "[[packages.wheels]]", *_wheel(f, base), "",
                "[packages.tool.wheelhouse]", f"origin = {_s(f.origin.value)}",
                f"target = {_s(str(t))}"]
    out += ["", "[tool.wheelhouse]", f"version = {_s(__version__)}"]
    return "\n".join(out) + "\n"


def _wheel(f: StoredFile, base: str) -> list[str]:
    return [f"name = {_s(f.filename)}", f"url = {_s(file_href(f, base + 'files/'))}",
            f"size = {f.size}", f"upload-time = {_datetime(f.upload_time)}",
            f"hashes = {{ sha256 = {_s(f.sha256)} }}"]


def _s(text: str) -> str:
    # JSON's escapes are TOML's; non-ASCII stays as it is (TOML has no surrogate escapes).
    return json.dumps(text, ensure_ascii=False)


def _datetime(text: str) -> str:
    """An RFC 3339 TOML datetime (PEP 700's upload-time, in UTC)."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def write_locks(results: Iterable[Installable], out: Path, *, base: str,
                inputs: Iterable[Path]) -> list[Path]:
    """Write both files for every target into ``out``; returns their paths. Raises
    UsageError when ``out`` cannot be written."""
    written = []
    sources = list(inputs)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for result in results:
            reqs_name, pylock_name = names(result.target)
            for name, text in (
                    (reqs_name, requirements_text(result, base=base, inputs=sources)),
                    (pylock_name, pylock_text(result, base=base, inputs=sources))):
                path = out / name
                tmp = path.with_name(f".{name}.tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(path)  # a reader never sees half a lock
                written.append(path)
    except OSError as e:
        raise UsageError(f"cannot write the lockfiles into {out}: {e}",
                         hint="choose a writable directory with --output-dir") from None
    return written
