"""Locking input that is not fully pinned, with pip-tools' ``pip-compile``.

pip-compile resolves for the interpreter it runs under, so its result is the closure for the
host; the planner then walks each target's own closure with that target's markers and uses
these pins wherever the target needs the same project.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.utils import NormalizedName

from wheelhouse.errors import LockFailed
from wheelhouse.requirements import RequirementSet, parse_requirements

#: pip options that would make pip-compile read sources other than the ones we pass it.
_PIP_SOURCE_VARS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX")


def source_environment(
    index_url: str | None, extra_index_urls: Sequence[str], find_links: Sequence[str],
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for a pip child process that must use exactly these sources.

    The user's pip configuration is kept (certificates, proxies, timeouts), but its sources
    are overridden: the environment wins over configuration files in pip.
    """
    env = dict(os.environ if base is None else base)
    for var in _PIP_SOURCE_VARS:
        env.pop(var, None)
    if index_url:
        env["PIP_INDEX_URL"] = index_url
    else:
        env["PIP_NO_INDEX"] = "1"
    env["PIP_EXTRA_INDEX_URL"] = " ".join(extra_index_urls)
    env["PIP_FIND_LINKS"] = " ".join(find_links)
    return env


def lock(
    reqs: RequirementSet,
    *,
    index_url: str | None,
    extra_index_urls: Sequence[str],
    find_links: Sequence[str],
    python: str = sys.executable,
) -> dict[NormalizedName, str]:
    """Resolve ``reqs`` to exact versions of the whole closure; returns name → version."""
    with tempfile.TemporaryDirectory(prefix="wheelhouse-lock-") as tmp:
        src = Path(tmp) / "requirements.in"
        out = Path(tmp) / "requirements.txt"
        lines = [str(r.requirement) for r in reqs.requirements]
        if reqs.constraints:
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text("\n".join(str(c.requirement) for c in reqs.constraints) + "\n")
            lines.append(f"-c {constraints}")
        src.write_text("\n".join(lines) + "\n")
        cmd = [
            python, "-m", "piptools", "compile", "--quiet", "--no-header", "--no-annotate",
            "--no-emit-index-url", "--no-emit-find-links", "--allow-unsafe", "--strip-extras",
            "--no-config", "--cache-dir", str(Path(tmp) / "cache"),
            "--output-file", str(out), str(src),
        ]
        if reqs.pre:
            cmd.append("--pre")
        env = source_environment(index_url, extra_index_urls, find_links)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            detail = _last_error_lines(proc.stderr or proc.stdout)
            raise LockFailed(
                "the requirements cannot be locked (pip-compile failed):\n" + detail,
                output=(proc.stderr or "") + (proc.stdout or ""),
                hint="check that every named version exists on the index; "
                "pin versions that conflict",
            )
        locked = parse_requirements(out)
    pins: dict[NormalizedName, str] = {}
    for line in locked.requirements:
        version = line.pinned_version
        if version is not None:
            pins[line.name] = version
    return pins


def _last_error_lines(text: str, n: int = 12) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join("  " + ln for ln in lines[-n:])
