"""The compile cache of builder containers: ccache, where the builder image has it, with its
cache in a named volume per builder image (``wheelhouse-ccache-<image id>``) that outlives
the run, so a retried failure, a new patch release or a second policy of the same sdist does
not compile every C file again.

The compilers are intercepted by a directory of ``ccache`` links put first on PATH, so the
compiler command a build runs is unchanged (the same bytes come out, warm or cold); the cache
key includes the compiler's content (``CCACHE_COMPILERCHECK=content``). Off with
``compile-cache = false``."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

#: where the volume is mounted in a builder container, and the links to ccache.
CACHE_DIR = "/wheelhouse/ccache"
BIN_DIR = "/wheelhouse/ccache-bin"
#: the compiler names intercepted, where the image has them.
COMPILERS = ("cc", "gcc", "c++", "g++", "clang", "clang++",
             "x86_64-linux-musl-gcc", "aarch64-linux-musl-gcc",
             "x86_64-linux-musl-g++", "aarch64-linux-musl-g++")


def volume(image_id: str) -> str:
    """The named volume holding the cache of one builder image."""
    return "wheelhouse-ccache-" + image_id.removeprefix("sha256:")[:16]


def setup_script() -> str:
    """Run once in a new builder container: links for the compilers it has, stats zeroed.
    Prints ``ccache<TAB>PATH-to-use`` when ccache is there, nothing otherwise."""
    links = " ".join(shlex.quote(c) for c in COMPILERS)
    return (
        "cc_bin=$(command -v ccache 2>/dev/null) || exit 0; "
        f"mkdir -p {BIN_DIR} {CACHE_DIR}; "
        f"for c in {links}; do command -v \"$c\" >/dev/null 2>&1 && "
        f"ln -sf \"$cc_bin\" {BIN_DIR}/\"$c\"; done; "
        f"CCACHE_DIR={CACHE_DIR} ccache -z >/dev/null 2>&1; "
        f"printf 'ccache\\t%s\\n' \"{BIN_DIR}:$PATH\""
    )


def environment(path: str) -> dict[str, str]:
    """What a build runs with when the cache is on."""
    return {"PATH": path, "CCACHE_DIR": CACHE_DIR, "CCACHE_COMPILERCHECK": "content",
            "CCACHE_NOHASHDIR": "1", "CCACHE_MAXSIZE": "5G"}


def parse_setup(output: str) -> str | None:
    """The PATH to build with, or None when the image has no ccache."""
    for line in output.splitlines():
        name, _, value = line.partition("\t")
        if name == "ccache" and value.strip():
            return value.strip()
    return None


STATS = f"CCACHE_DIR={CACHE_DIR} ccache --print-stats 2>/dev/null || true"


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


def parse_stats(output: str) -> Stats:
    """``ccache --print-stats`` (tab-separated counters) as hits and misses."""
    values: dict[str, int] = {}
    for line in output.splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            values[key.strip()] = int(value)
    hits = values.get("direct_cache_hit", 0) + values.get("preprocessed_cache_hit", 0)
    return Stats(hits=hits, misses=values.get("cache_miss", 0))
