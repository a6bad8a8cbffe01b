"""Static export of the index: the pages the server renders (``wheelhouse.simple.render``),
the files and their ``.metadata``, laid out so that a static web server serves the same index (see
``server/nginx.conf``). Owns the layout of an export directory and replacing it atomically.

Layout of OUT::

    simple/index.html, simple/index.json           the project list (PEP 503 HTML, PEP 691 JSON)
    simple/<project>/index.html, index.json        one project's page in both formats
    files/<project>/<filename>                     the distribution files
    files/<project>/<filename>.metadata            their METADATA (PEP 658), wheels only
    links/index.html                               the flat --find-links page
    .wheelhouse-export.json                        marks OUT as an export (see ``export``)

The pages link to files with the same relative URLs as the server's, so both resolve to
``/files/...`` whether the index is served by wheelhouse or from this tree.

A store that needs a token to read (a server ran it with a read token) keeps that protection:
its export is written only with the read token, together with ``<OUT>.nginx.conf`` and
``<OUT>.htpasswd`` beside OUT, an nginx configuration that asks for it (``wheelhouse.nginx``);
without the token it is refused, unless asked to publish it openly.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from packaging.utils import NormalizedName

from wheelhouse.errors import StoreError, UsageError, WheelhouseError
from wheelhouse.simple import render
from wheelhouse.store.model import Kind, StoredFile
from wheelhouse.store.protocols import StoreReader
from wheelhouse.store.store import Store
from wheelhouse.util import fsync_dir

#: How a file got into the export.
Placed = Literal["linked", "reused", "copied"]

#: Present in every export; a non-empty OUT without it is never replaced.
MARKER = ".wheelhouse-export.json"

# Pages and copied files must be readable by a web server running as another user.
_FILE_MODE = 0o644
_DIR_MODE = 0o755
# Errors of os.link that mean "this filesystem or file cannot be linked here": copy instead.
_CANNOT_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP}


@dataclass(frozen=True, kw_only=True)
class ExportSummary:
    """What an export wrote. Of the ``files``, ``linked`` share the store's inode,
    ``reused`` were taken over from the export being replaced, the rest were ``copied``."""

    out: Path
    generation: int
    projects: int
    files: int
    linked: int
    reused: int
    copied: int
    #: the nginx configuration written for a read-protected export, else None.
    nginx_conf: Path | None = None


def export(store_root: Path, out: Path, *, link: bool = True, read_token: str | None = None,
           public: bool = False) -> ExportSummary:
    """Write the index of the store at ``store_root`` as a static tree at ``out``.

    With ``read_token`` (or a store marked read-protected, which then needs it) the export
    comes with an nginx configuration that asks for the token; a read-protected store without
    the token raises UsageError before anything is written, unless ``public``.

    The tree is built in a temporary directory next to ``out`` and then swapped in with one
    rename, so a web server serving ``out`` sees either the old export or the new one. An
    existing ``out`` is replaced only if it is empty or an earlier export (it holds
    MARKER); anything else raises UsageError and is left alone.

    Each file is, in order of preference: hard-linked from the store (when ``link`` is true,
    the export is on the store's filesystem and the file is readable by other users: a link
    shares the store's permissions, and a web server usually runs as another user); taken
    over from the export being replaced; or copied with mode 0644. Copies keep the store
    file's mtime, and pages whose bytes did not change are taken over from the previous
    export, so a web server's ETags and Last-Modified (nginx: mtime and size) stay valid
    across re-exports and clients revalidate with 304s instead of downloading again.

    Raises StoreError when the store cannot be read or a listed file is missing, UsageError
    for an unusable ``out``, WheelhouseError when writing fails.
    """
    store = Store(Path(store_root), readonly=True)
    try:
        # Generation first, as the server does: rows read later are at least this new.
        generation = store.generation()
        files = store.files()
    except (StoreError, OSError) as e:
        raise StoreError(
            f"cannot read the catalogue of the store at {store_root}: {e}",
            hint="check that the path is a wheelhouse store and readable by this user",
        ) from None

    out = Path(os.path.abspath(out))
    protect = _protection(store, read_token, public=public)
    previous = out if _check_replaceable(out) else None
    conf = None
    if protect is not None:
        # Before the tree exists: nginx is never pointed at it without the password file.
        from wheelhouse import nginx

        conf, _ = nginx.write_protected(out, protect)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        raise _write_error(out, e) from None
    try:
        os.chmod(tmp, _DIR_MODE)
        tree = _Tree(
            root=tmp,
            previous=previous,
            link_store=link and _same_filesystem(store.root / "files", tmp),
        )
        by_project = _group(files)
        _write_pages(tree, by_project, files)
        placed = _write_files(store, tree, files)
        _write_marker(tmp, store_root, generation, len(by_project), len(files))
        # One flush of everything written, so that after a crash the renamed tree is never a
        # tree of empty files; cheaper than an fsync per page.
        os.sync()
        _swap_into_place(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(out, e) from None
    except BaseException:
        # Our own errors (a file missing from the store) and interrupts alike: nothing
        # half-written stays next to OUT, and OUT itself was never touched.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportSummary(
        out=out,
        generation=generation,
        projects=len(by_project),
        files=len(files),
        linked=placed["linked"],
        reused=placed["reused"],
        copied=placed["copied"],
        nginx_conf=conf,
    )


def _protection(store: StoreReader, read_token: str | None, *, public: bool) -> str | None:
    """The token the export's nginx must ask for, or None for an open export."""
    if read_token is not None:
        return read_token
    try:
        protected = store.read_protected()
    except StoreError:
        protected = False  # a catalogue from before the marker existed: not marked
    if protected and not public:
        raise UsageError(
            f"the store at {store.root} is read-protected (a server ran it with a read token); "
            "an export without the token would publish it to anyone who can reach nginx",
            hint="pass --read-token-file (or WHEELHOUSE_READ_TOKEN) to write an nginx "
            "configuration that asks for it, or --public to export it openly on purpose",
        )
    return None


def _write_error(out: Path, e: OSError) -> WheelhouseError:
    return WheelhouseError(
        f"cannot write the export at {out}: {e.strerror or e}",
        hint="choose a writable OUT directory (the export is built next to it, then renamed)",
    )


def _check_replaceable(out: Path) -> bool:
    """Raise UsageError unless ``out`` may be written; True if it is an earlier export."""
    if not out.exists() and not out.is_symlink():
        return False
    if out.is_symlink() or not out.is_dir():
        raise UsageError(
            f"{out} exists and is not a directory",
            hint="choose a new OUT directory, or an earlier export to replace",
        )
    if (out / MARKER).is_file():
        return True
    with contextlib.suppress(OSError), os.scandir(out) as entries:
        if next(entries, None) is None:
            return False
    raise UsageError(
        f"{out} is not empty and not a wheelhouse export; refusing to replace it",
        hint="choose a new OUT directory, or an earlier export to replace",
    )


def _group(files: Iterable[StoredFile]) -> dict[NormalizedName, list[StoredFile]]:
    grouped: dict[NormalizedName, list[StoredFile]] = {}
    for f in files:
        grouped.setdefault(f.project, []).append(f)
    return grouped


def _same_filesystem(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _write_new(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
    os.chmod(path, _FILE_MODE)


def _try_link(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst)
    except OSError as e:
        if e.errno in _CANNOT_LINK:
            return False
        raise
    return True


@dataclass(kw_only=True)
class _Tree:
    """The tree being written, and where its entries may be taken from instead of written."""

    root: Path
    previous: Path | None
    link_store: bool

    def mkdir(self, rel: str) -> None:
        path = self.root / rel
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, _DIR_MODE)

    def page(self, rel: str, data: bytes) -> None:
        """Write a page, or take the previous export's if it has exactly these bytes."""
        dst = self.root / rel
        if self.previous is not None:
            old = self.previous / rel
            with contextlib.suppress(OSError):
                same = old.stat().st_size == len(data) and old.read_bytes() == data
                if same and _try_link(old, dst):
                    return
        _write_new(dst, data)

    def file(self, src: Path, st: os.stat_result, rel: str) -> Placed:
        """Place one published file (``st``: its stat) at ``rel``."""
        dst = self.root / rel
        if self.link_store and st.st_mode & 0o004 and _try_link(src, dst):
            return "linked"
        if self.previous is not None:
            # The same name always has the same bytes (the store never replaces a file), so
            # the previous export's copy is this file; the size check guards against hands.
            old = self.previous / rel
            with contextlib.suppress(FileNotFoundError):
                if os.stat(old).st_size == st.st_size and _try_link(old, dst):
                    return "reused"
        shutil.copyfile(src, dst)
        os.chmod(dst, _FILE_MODE)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        return "copied"


def _write_pages(
    tree: _Tree, by_project: dict[NormalizedName, list[StoredFile]], files: list[StoredFile]
) -> None:
    tree.mkdir("simple")
    names = sorted(by_project)
    tree.page("simple/index.html", render.project_list_html(names).body)
    tree.page("simple/index.json", render.project_list_json(names).body)
    for project, project_files in by_project.items():
        tree.mkdir(f"simple/{project}")
        tree.page(f"simple/{project}/index.html", render.project_html(project, project_files).body)
        tree.page(f"simple/{project}/index.json", render.project_json(project, project_files).body)
    tree.mkdir("links")
    tree.page("links/index.html", render.links_html(files).body)


def _missing(what: str) -> StoreError:
    return StoreError(
        what,
        hint="the store was modified by hand; restore the file or rebuild the store",
    )


def _write_files(store: StoreReader, tree: _Tree, files: list[StoredFile]) -> Counter[Placed]:
    """Place every file and its metadata; counts how the files (not metadata) were placed."""
    placed: Counter[Placed] = Counter()
    made: set[str] = set()
    for f in files:
        if f.project not in made:
            tree.mkdir(f"files/{f.project}")
            made.add(f.project)
        src = store.file_path(f)
        try:
            st = os.stat(src)
        except FileNotFoundError:
            raise _missing(f"{f.relpath} is published but missing from the store") from None
        if st.st_size != f.size:
            # The index would promise bytes the file does not have; pip and uv would fail on
            # the hash anyway, later and less clearly.
            raise _missing(f"{f.relpath} is {st.st_size} bytes on disk, {f.size} in the "
                           "catalogue")
        placed[tree.file(src, st, f"files/{f.relpath}")] += 1
        if f.kind is Kind.WHEEL and f.metadata_sha256 is not None:
            meta = store.metadata_path(f)
            try:
                meta_st = os.stat(meta)
            except FileNotFoundError:
                raise _missing(f"the metadata of {f.relpath} is advertised but missing") from None
            tree.file(meta, meta_st, f"files/{f.relpath}.metadata")
    return placed


def _write_marker(root: Path, store_root: Path, generation: int, projects: int,
                  files: int) -> None:
    marker = {
        "store": str(Path(os.path.abspath(store_root))),
        "generation": generation,
        "projects": projects,
        "files": files,
        "exported-at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    _write_new(root / MARKER, (json.dumps(marker, indent=2) + "\n").encode())


# -- replacing OUT --------------------------------------------------------------------------

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False if unsupported here."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Put the finished tree ``tmp`` at ``out`` and remove what was there."""
    if not out.exists():
        os.rename(tmp, out)
    elif _exchange(tmp, out):
        # ``tmp`` now holds the previous export.
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        # No atomic exchange on this system: OUT is missing between the two renames.
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / "tree")
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(out.parent)
