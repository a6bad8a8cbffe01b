"""Reading requirements files in the grammar real lockfiles use.

Supported: PEP 508 requirements with extras and environment markers, ``==`` pins and ranges,
``--hash=`` options, ``-r``/``-c`` includes (relative to the including file), comments, line
continuations, ``${VAR}`` expansion, and the index options (``-i``, ``--extra-index-url``,
``-f``, ``--no-index``, ``--pre``, and the ones that change nothing for a wheel builder).
Editables, VCS and direct URL or path requirements are refused with the file and line.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse.errors import RequirementsError

_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
_COMMENT = re.compile(r"(^|\s+)#.*$")
_HASH = re.compile(r"^(sha256|sha384|sha512):([0-9a-fA-F]+)$")

#: options that take a value and that we honour or that carry no meaning for a wheel builder.
_VALUE_OPTIONS = {
    "-r": "requirement", "--requirement": "requirement",
    "-c": "constraint", "--constraint": "constraint",
    "-i": "index_url", "--index-url": "index_url",
    "--extra-index-url": "extra_index_url",
    "-f": "find_links", "--find-links": "find_links",
    "--trusted-host": "ignored", "--only-binary": "ignored", "--no-binary": "ignored",
    "--use-feature": "ignored", "--progress-bar": "ignored",
}
_FLAG_OPTIONS = {
    "--no-index": "no_index", "--pre": "pre",
    "--prefer-binary": "ignored", "--require-hashes": "ignored",
}
_REFUSED = {
    "-e": "editable requirements", "--editable": "editable requirements",
}


@dataclass(frozen=True, kw_only=True)
class RequirementLine:
    requirement: Requirement
    #: allowed file hashes, as ``sha256:<hex>``; empty means any file.
    hashes: frozenset[str] = frozenset()
    #: ``path:line`` where this requirement was written.
    source: str

    @property
    def name(self) -> NormalizedName:
        return canonicalize_name(self.requirement.name)

    @property
    def pinned_version(self) -> str | None:
        """The version of an exact ``==`` pin (no wildcard), else None."""
        specs = list(self.requirement.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            return specs[0].version
        return None

    def applies_to(self, environment: dict[str, str]) -> bool:
        marker = self.requirement.marker
        return marker is None or marker.evaluate(environment | {"extra": ""})


@dataclass(frozen=True, kw_only=True)
class RequirementSet:
    requirements: tuple[RequirementLine, ...]
    constraints: tuple[RequirementLine, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    pre: bool = False
    #: every file read, in order, for cache keys and messages.
    files: tuple[Path, ...] = field(default=())

    def digest(self) -> str:
        """A stable digest of the inputs: the bytes of every file read."""
        return files_digest(self.files)

    @property
    def fully_pinned(self) -> bool:
        return all(r.pinned_version is not None for r in self.requirements)


def files_digest(paths: Iterable[Path]) -> str:
    """A stable digest of input files: each one's path and bytes, in order."""
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass
class _Collector:
    requirements: list[RequirementLine] = field(default_factory=list)
    constraints: list[RequirementLine] = field(default_factory=list)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    no_index: bool = False
    pre: bool = False
    files: list[Path] = field(default_factory=list)


def parse_requirements(*paths: Path) -> RequirementSet:
    """Parse one or more requirements files (and their includes) into one RequirementSet."""
    out = _Collector()
    for path in paths:
        _parse_file(Path(path), out, constraint=False, stack=())
    return RequirementSet(
        requirements=tuple(out.requirements),
        constraints=tuple(out.constraints),
        index_url=out.index_url,
        extra_index_urls=tuple(out.extra_index_urls),
        find_links=tuple(out.find_links),
        no_index=out.no_index,
        pre=out.pre,
        files=tuple(out.files),
    )


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Join continuation lines and strip comments, keeping the first physical line number."""
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).rstrip()
        if not buf:
            start = number
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        joined = " ".join(part.strip() for part in buf).strip()
        buf = []
        if joined:
            yield start, joined
    if buf:
        joined = " ".join(part.strip() for part in buf).strip()
        if joined:
            yield start, joined


def _expand(value: str, where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        if m[1] not in os.environ:
            raise RequirementsError(
                f"{where}: environment variable {m[1]} is not set",
                hint=f"set {m[1]} or write the value into the file",
            )
        return os.environ[m[1]]

    return _ENV_VAR.sub(sub, value)


def _parse_file(path: Path, out: _Collector, *, constraint: bool, stack: tuple[Path, ...]) -> None:
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in (*stack, resolved))
        raise RequirementsError(f"requirements files include each other: {chain}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        where = f" (included from {stack[-1]})" if stack else ""
        raise RequirementsError(
            f"requirements file {path} does not exist{where}",
            hint="check the path; -r and -c paths are relative to the file that names them",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RequirementsError(f"cannot read requirements file {path}: {e}") from None
    out.files.append(path)
    for number, line in _logical_lines(text):
        _parse_line(path, number, _expand(line, f"{path}:{number}"), out,
                    constraint=constraint, stack=(*stack, resolved))


def _parse_line(
    path: Path, number: int, line: str, out: _Collector, *, constraint: bool,
    stack: tuple[Path, ...],
) -> None:
    where = f"{path}:{number}"
    if line.startswith("-"):
        _parse_option_line(path, where, line, out, stack=stack)
        return
    # Split requirement and its per-requirement options (--hash=...).
    req_text, opts = _split_requirement_options(line)
    hashes = set()
    tokens = _shlex(opts, where)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        name, eq, value = tok.partition("=")
        if name == "--hash":
            if not eq:
                i += 1
                value = tokens[i] if i < len(tokens) else ""
            m = _HASH.match(value)
            if not m:
                raise RequirementsError(
                    f"{where}: {value!r} is not a hash in the form sha256:<hex>",
                    hint="write --hash=sha256:<64 hex digits>",
                )
            hashes.add(f"{m[1]}:{m[2].lower()}")
        elif name in ("--config-settings", "--global-option", "--install-option"):
            raise RequirementsError(
                f"{where}: per-requirement {name} is not supported",
                hint="put build settings for a package into [tool.wheelhouse.packages.<name>]",
            )
        else:
            raise RequirementsError(f"{where}: unknown option {tok!r} after the requirement")
        i += 1
    requirement = _parse_requirement(req_text, where)
    entry = RequirementLine(requirement=requirement, hashes=frozenset(hashes), source=where)
    (out.constraints if constraint else out.requirements).append(entry)


def _split_requirement_options(line: str) -> tuple[str, str]:
    m = re.search(r"\s--?[a-zA-Z]", line)
    if m is None:
        return line, ""
    return line[: m.start()].strip(), line[m.start():].strip()


def _shlex(text: str, where: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as e:
        raise RequirementsError(f"{where}: cannot split options: {e}") from None


def _parse_requirement(text: str, where: str) -> Requirement:
    if re.match(r"^(git|hg|svn|bzr)\+", text) or ("://" in text.split(";")[0] and "@" not in text):
        raise RequirementsError(
            f"{where}: {text!r} is a VCS or URL requirement, which wheelhouse cannot pin "
            "to one version",
            hint="publish a release of it and pin NAME==VERSION, or build its sdist with "
            "`python -m build --sdist`, pin NAME==VERSION and give wheelhouse the sdist's "
            "directory: `wheelhouse build --find-links DIR` (or a `--find-links DIR` line in "
            "the file)",
        )
    looks_like_path = text.startswith((".", "/", "~")) or text.endswith((".whl", ".tar.gz", ".zip"))
    if looks_like_path and "@" not in text:
        raise RequirementsError(
            f"{where}: {text!r} is a local path requirement",
            hint="put the sdist or wheel in a directory, pin NAME==VERSION, and give the "
            "directory with `wheelhouse build --find-links DIR` (or a `--find-links DIR` "
            "line in the file)",
        )
    try:
        req = Requirement(text)
    except InvalidRequirement as e:
        raise RequirementsError(
            f"{where}: {text!r} is not a valid requirement: {e}",
            hint="requirements look like name==1.2.3, name[extra]>=1.0, or "
            "name==1.0; python_version < '3.12'",
        ) from None
    if req.url:
        raise RequirementsError(
            f"{where}: {text!r} is a direct URL requirement ({req.name} @ ...)",
            hint="pin NAME==VERSION and give wheelhouse its sdist or wheel: build the sdist "
            "with `python -m build --sdist` if need be, then `wheelhouse build --find-links "
            "DIR` (or a `--find-links DIR` line in the file), or publish it to the index",
        )
    return req


def _parse_option_line(
    path: Path, where: str, line: str, out: _Collector, *, stack: tuple[Path, ...]
) -> None:
    tokens = _shlex(line, where)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        name, eq, value = tok.partition("=")
        if not eq and len(name) > 2 and name[:2] in ("-r", "-c", "-i", "-f", "-e") \
                and not name.startswith("--"):
            name, value, eq = name[:2], name[2:], "="
        if name in _REFUSED:
            raise RequirementsError(
                f"{where}: {_REFUSED[name]} ({line!r}) cannot be built into a shared wheel",
                hint="pin a released version instead, or build an sdist and name its "
                "directory with `wheelhouse build --find-links DIR`",
            )
        if name in _FLAG_OPTIONS:
            kind = _FLAG_OPTIONS[name]
            if kind == "no_index":
                out.no_index = True
            elif kind == "pre":
                out.pre = True
            i += 1
            continue
        if name not in _VALUE_OPTIONS:
            raise RequirementsError(
                f"{where}: unknown option {name!r}",
                hint="supported: -r, -c, -i/--index-url, --extra-index-url, -f/--find-links, "
                "--no-index, --pre, --hash",
            )
        if not eq:
            i += 1
            if i >= len(tokens):
                raise RequirementsError(f"{where}: {name} needs a value")
            value = tokens[i]
        kind = _VALUE_OPTIONS[name]
        if kind in ("requirement", "constraint"):
            include = Path(value)
            if not include.is_absolute():
                include = path.parent / include
            _parse_file(include, out, constraint=(kind == "constraint"), stack=stack)
        elif kind == "index_url":
            out.index_url = value
        elif kind == "extra_index_url":
            out.extra_index_urls.append(value)
        elif kind == "find_links":
            out.find_links.append(_relative_location(value, path))
        i += 1


def _relative_location(value: str, path: Path) -> str:
    """pip reads a relative --find-links path relative to the file when it exists there."""
    if "://" in value or Path(value).is_absolute():
        return value
    beside = path.parent / value
    return str(beside.resolve()) if beside.exists() else str(Path(value).resolve())


def marker_applies(marker: Marker | None, environment: dict[str, str], extra: str = "") -> bool:
    return marker is None or marker.evaluate(environment | {"extra": extra})
