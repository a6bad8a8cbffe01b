"""Fixture generator for the index benchmarks: a real wheelhouse store filled with many tiny,
valid wheels (METADATA, WHEEL, a correct RECORD), published through ``Store.publish``.

    python bench/gen_store.py OUT_STORE [--projects 5000] [--files 50000] [--big-files 2000]

One project (``bench-big``) gets ``--big-files`` files; the others share the rest evenly
(each gets consecutive versions ``1.0.0``, ``1.0.1``, ...). Wheels are built in memory and
written straight into the store's staging area, so publishing moves them instead of copying.
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The fixture writers live with the tests; benches run from a checkout.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.distributions import wheel_bytes as _wheel_bytes
from tests.distributions import wheel_filename
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store

BIG_PROJECT = "bench-big"
# A fixed date: identical inputs give identical bytes, so re-running over an existing store is
# a no-op (IDENTICAL) instead of a conflict.


@dataclass(frozen=True, kw_only=True)
class Layout:
    """How many files each project gets: ``big_files`` for BIG_PROJECT, the rest spread evenly."""

    projects: int
    files: int
    big_files: int

    def __post_init__(self) -> None:
        if self.projects < 1 or self.files < self.projects:
            raise ValueError("need at least one project and one file per project")
        if self.projects > 1 and self.files - self.big_files < self.projects - 1:
            raise ValueError("--big-files leaves fewer files than the other projects need")

    @property
    def big(self) -> int:
        # A single project is the big one, with every file.
        return self.files if self.projects == 1 else self.big_files

    def names(self) -> list[str]:
        """Every project name; BIG_PROJECT first."""
        return [BIG_PROJECT] + [f"bench-pkg-{i:05d}" for i in range(1, self.projects)]

    def ordinary(self) -> list[str]:
        return self.names()[1:]

    def counts(self) -> Iterator[tuple[str, int]]:
        names = self.names()
        yield names[0], self.big
        rest = names[1:]
        if not rest:
            return
        share, extra = divmod(self.files - self.big, len(rest))
        for i, name in enumerate(rest):
            yield name, share + (1 if i < extra else 0)


def version_of(i: int) -> str:
    return f"1.{i // 100}.{i % 100}"


def populate(store: Store, layout: Layout, *, progress: bool = True) -> float:
    """Publish every wheel of ``layout`` into ``store``; returns the seconds it took."""
    started = time.monotonic()
    done = 0
    for name, count in layout.counts():
        for i in range(count):
            version = version_of(i)
            staged = store.staging_file(suffix=".whl")
            staged.write_bytes(wheel_bytes(name, version))
            # consume=True renames the staged file into place: no second copy, no extra fsync.
            store.publish(staged, filename=wheel_filename(name, version),
                          origin=Origin.UPLOADED, consume=True)
            done += 1
            if progress and done % 5000 == 0:
                rate = done / (time.monotonic() - started)
                print(f"  published {done}/{layout.files} ({rate:.0f}/s)", flush=True)
    return time.monotonic() - started


def wheel_bytes(name: str, version: str) -> bytes:
    """A minimal valid pure wheel, stored rather than deflated: members are tens of bytes,
    and compression would only cost time at 50,000 wheels."""
    return _wheel_bytes(name, version, requires_python=">=3.8", compression=zipfile.ZIP_STORED,
                        generator="wheelhouse-bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--projects", type=int, default=5000)
    parser.add_argument("--files", type=int, default=50000)
    parser.add_argument("--big-files", type=int, default=2000)
    args = parser.parse_args()
    layout = Layout(projects=args.projects, files=args.files, big_files=args.big_files)
    seconds = populate(Store(args.store), layout)
    print(f"published {layout.files} wheels in {layout.projects} projects into {args.store} "
          f"in {seconds:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
