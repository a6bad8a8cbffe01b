"""Reading a lockfile: which files are lockfiles, and the reader for each kind.
"""

from __future__ import annotations

from pathlib import Path

from wheelhouse.lockfiles.model import Lockfile


def is_lockfile(path: Path) -> bool:
    """Whether ``path`` is read as a lockfile rather than as a requirements file: by its name,
    as installers tell them apart (``pylock.toml``, ``pylock.NAME.toml``, ``uv.lock``)."""
    from packaging.pylock import is_valid_pylock_path

    return path.name == "uv.lock" or is_valid_pylock_path(path)


def read_lockfile(path: Path) -> Lockfile:
    """Read and check a lockfile. Raises RequirementsError naming the file and the entry."""
    if path.name == "uv.lock":
        from wheelhouse.lockfiles.uvlock import read_uv_lock

        return read_uv_lock(path)
    from wheelhouse.lockfiles.pylock import read_pylock

    return read_pylock(path)
