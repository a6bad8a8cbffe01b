"""Settings as values: what a run or a server is configured to do (``Settings``, and
``PackageSettings`` per package), with the built-in defaults. ``wheelhouse.config`` reads them
from files, the environment and flags; ``wheelhouse.options`` turns them into a run's options.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from packaging.utils import canonicalize_name

DEFAULT_INDEX_URL = "https://pypi.org/simple/"

#: The largest distribution file the server accepts by default. PyPI's default is 100 MiB;
#: private indexes hold CUDA-sized wheels, so the default is generous and the option lowers it.
DEFAULT_MAX_UPLOAD_BYTES = 1 << 30

#: WHEELHOUSE_* variables that are not settings but are read by one component on purpose.
NON_SETTING_ENV = frozenset({
    "WHEELHOUSE_UPLOAD_TOKEN", "WHEELHOUSE_READ_TOKEN",
    # read by builders/bootstrap and .ci/engine, not by the wheelhouse command
    "WHEELHOUSE_BOOTSTRAP_CACHE", "WHEELHOUSE_DOCKERD_WAIT",
})


def default_store() -> Path:
    """A per-user data directory: one store serves every project on the machine.

    (Not ``./wheelhouse``, which would collide with the source folder of this repository.)
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wheelhouse" / "store"


#: system packages for any image (names), or per package manager ((manager, names) pairs).
SystemPackages = tuple[str, ...] | tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, kw_only=True)
class PackageSettings:
    """Per-package build settings (``[tool.wheelhouse.packages.<name>]``)."""

    #: system packages for any builder image (a list in the config), or per package manager
    #: as sorted (manager, packages) pairs (a table keyed by apk, dnf, yum, apt-get), for
    #: images whose managers name the library differently (libffi-dev, libffi-devel).
    system_packages: SystemPackages = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    auditwheel_exclude: tuple[str, ...] = ()
    build_from_source: bool = False
    #: requirement specifiers that bound the build requirements (e.g. "cython<3").
    build_constraints: tuple[str, ...] = ()
    #: a shell command run with the new wheel installed in the target's consumer; None: the
    #: default test (import the wheel's top-level modules); "": no test.
    test: str | None = None
    #: False: never retry a failed build of this package with a known fix (None: the
    #: global ``auto-fix``).
    auto_fix: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Settings:
    store: Path = field(default_factory=default_store)
    #: the store in a bucket (``s3://BUCKET/PREFIX``); ``store`` is then unused.
    store_url: str | None = None
    #: the catalogue and build ledger in PostgreSQL (``postgresql://…``); None: SQLite
    #: beside a local store.
    catalogue: str | None = None
    #: ``serve``: answer downloads from a bucket with a redirect to a presigned URL instead
    #: of streaming them through the server.
    presign_downloads: bool = False
    #: the bucket's public endpoint the presigned URLs are signed for (clients outside the
    #: replicas' network); None: the endpoint the replicas use (AWS_ENDPOINT_URL, or AWS's).
    presign_endpoint: str | None = None
    #: target identifiers or globs over the known ones (``cp31*-musllinux_*``).
    targets: tuple[str, ...] = ()
    #: globs of targets to drop from ``targets`` (``*t-*``: no free-threaded builds).
    skip: tuple[str, ...] = ()
    index_url: str = DEFAULT_INDEX_URL
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    jobs: int = 2
    build_timeout: float = 3600.0
    retry_failed: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    #: serve projects the store does not host from index_url (the server's fall-through).
    fall_through: bool = False
    images: Mapping[str, str] = field(default_factory=dict)
    engine: str = "docker"
    #: an architecture, platform or target glob → the engine that builds it (an address
    #: such as ``ssh://arm-builder`` or ``unix:///run/arm.sock``, or a Docker context name);
    #: targets not named here build on the default engine.
    engines: Mapping[str, str] = field(default_factory=dict)
    builder_network: Literal["none", "host"] = "none"
    builder_memory: str | None = "4g"
    builder_cpus: float | None = None
    ca_bundle: Path | None = None
    consumer_images: Mapping[str, str] = field(default_factory=dict)
    packages: Mapping[str, PackageSettings] = field(default_factory=dict)
    #: constraints on every build's requirements (per-package ones are added to these).
    build_constraints: tuple[str, ...] = ()
    #: what a bare ``wheelhouse build`` (or ``check``, ``lock``) reads: requirements files and
    #: lockfiles (pylock.toml, uv.lock).
    requirements: tuple[Path, ...] = ()
    #: the shared index's upload URL (its /legacy/) that ``build`` publishes to.
    publish: str | None = None
    #: retry a build that failed for a cause with a known fix (``resources/causes.toml``)
    #: once with that fix, and say so.
    auto_fix: bool = True
    #: keep a compile cache (ccache, where the builder image has it) and the build
    #: environments per builder image in a named volume of the engine, between runs.
    compile_cache: bool = True

    @property
    def store_location(self) -> Path | str:
        """The store as ``backends.open_store`` takes it: a directory or a bucket URL."""
        return self.store_url if self.store_url is not None else self.store

    def package(self, name: str) -> PackageSettings:
        """The settings a build of ``name`` uses: its own table, plus the global build
        constraints (which are part of a build's identity like everything here)."""
        own = self.packages.get(canonicalize_name(name), PackageSettings())
        if not self.build_constraints:
            return own
        return replace(own, build_constraints=(*self.build_constraints,
                                               *own.build_constraints))
