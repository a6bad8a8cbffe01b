"""The compile cache of builder containers: ccache, where the builder image has it, with its
cache in a named volume per builder image (``wheelhouse-ccache-<image id>``) that outlives
the run, so a retried failure, a new patch release or a second policy of the same sdist does
not compile every C file again.

The volume also keeps the build environments (``buildenv``), tied to the image's interpreter
as the cache is to its compilers.

The compilers are intercepted by a directory of ``ccache`` links put first on PATH, so the
compiler command a build runs is unchanged (the same bytes come out, warm or cold); the cache
key includes the compiler's content (``CCACHE_COMPILERCHECK=content``). Off with
``compile-cache = false``."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

#: where the volume is mounted in a builder container, and the links to ccache.
CACHE_DIR = "/wheelhouse/ccache"
BIN_DIR = "/wheelhouse/ccache-bin"
#: this container's own log of what ccache did (the volume's counters are shared by every
#: run on the image, so they cannot say what this run hit).
LOG = "/wheelhouse/ccache.log"
#: build environments (``buildenv``) kept in the same volume: a venv is tied to the image's
#: interpreter paths, as the cache is to its compilers, so it is kept per image too.
ENVS_DIR = f"{CACHE_DIR}/envs"
#: the compiler names intercepted, where the image has them.
COMPILERS = ("cc", "gcc", "c++", "g++", "clang", "clang++",
             "x86_64-linux-musl-gcc", "aarch64-linux-musl-gcc",
             "x86_64-linux-musl-g++", "aarch64-linux-musl-g++")


#: the names of the cache volumes: this, then the first 16 hex digits of the image's id.
VOLUME_PREFIX = "wheelhouse-ccache-"


def volume(image_id: str) -> str:
    """The named volume holding the cache of one builder image."""
    return VOLUME_PREFIX + image_id.removeprefix("sha256:")[:16]


def image_key(volume_name: str) -> str | None:
    """The image id prefix a cache volume belongs to; None for other volumes."""
    key = volume_name.removeprefix(VOLUME_PREFIX)
    return key if key != volume_name and re.fullmatch(r"[0-9a-f]{16}", key) else None


def setup_script() -> str:
    """Run once in a new builder container: links for the compilers it has.
    Prints ``ccache<TAB>PATH-to-use`` when ccache is there, nothing otherwise."""
    links = " ".join(shlex.quote(c) for c in COMPILERS)
    return (
        "cc_bin=$(command -v ccache 2>/dev/null) || exit 0; "
        f"mkdir -p {BIN_DIR} {CACHE_DIR}; "
        f"for c in {links}; do command -v \"$c\" >/dev/null 2>&1 && "
        f"ln -sf \"$cc_bin\" {BIN_DIR}/\"$c\"; done; "
        f"printf 'ccache\\t%s\\n' \"{BIN_DIR}:$PATH\""
    )


def environment(path: str) -> dict[str, str]:
    """What a build runs with when the cache is on."""
    return {"PATH": path, "CCACHE_DIR": CACHE_DIR, "CCACHE_LOGFILE": LOG,
            "CCACHE_COMPILERCHECK": "content",
            "CCACHE_NOHASHDIR": "1", "CCACHE_MAXSIZE": "5G"}


def parse_setup(output: str) -> str | None:
    """The PATH to build with, or None when the image has no ccache."""
    for line in output.splitlines():
        name, _, value = line.partition("\t")
        if name == "ccache" and value.strip():
            return value.strip()
    return None


@dataclass(frozen=True, kw_only=True)
class Stats:
    hits: int = 0
    misses: int = 0

    def __add__(self, other: Stats) -> Stats:
        return Stats(hits=self.hits + other.hits, misses=self.misses + other.misses)

    def summary(self) -> str | None:
        total = self.hits + self.misses
        if not total:
            return None
        return (f"compile cache: {self.hits} of {total} compilations were hits "
                f"({100 * self.hits / total:.0f}%)")


#: the outcome lines of ccache's log: 4.2 (Debian 11) writes "cache hit (preprocessed)",
#: 4.7+ "preprocessed_cache_hit".
_RESULT = re.compile(r"Result: (direct_cache_hit|preprocessed_cache_hit|cache_miss|"
                     r"cache hit \((?:direct|preprocessed)\)|cache miss)\s*$")


def parse_stats(output: str) -> Stats:
    """The hits and misses in this container's ccache log (``STATS``)."""
    hits = misses = 0
    for line in output.splitlines():
        m = _RESULT.search(line)
        if m is None:
            continue
        if "miss" in m.group(1):
            misses += 1
        else:
            hits += 1
    return Stats(hits=hits, misses=misses)


#: what this container's builds did, for ``parse_stats``.
STATS = f"grep -h 'Result: ' {LOG} 2>/dev/null || true"
