"""The legacy upload API that ``twine upload`` and ``uv publish`` speak: a multipart POST with
``:action=file_upload``, the metadata fields and the file as ``content``.

The file is streamed into the store's staging area while it is hashed, never held in memory,
and handed to ``Store.publish``, which validates it and makes it visible atomically. Every bad
input gets a 4xx with a message (in the reason phrase too, which is what twine shows) and
leaves nothing behind; a file already published with other bytes gets 409 "File already
exists", which ``twine upload --skip-existing`` understands, whether it comes under the same
filename or another spelling of the same release (see ``Store.publish``); the same bytes again
get 200, so retries (twine retries a 5xx five times) are harmless.

Local versions (``1.0+abc``) and build tags are refused unless the server allows them: pip and
uv let ``==1.0`` match ``1.0+abc`` and prefer the higher build tag, so either would let an
uploader change what an existing pin installs without touching its file.

Slow clients cannot take the server's threads: uploads read at once are capped
(``UploadSlots``, the rest get 503 with Retry-After), each MiB of body must keep a pace
(``PacedReader``, else 408), and a body that stops arriving loses its slot after the same
timeout; see ``wheelhouse.server.bodies`` for why all three.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelhouse.distributions import parse_filename
from wheelhouse.errors import InvalidDistribution, PublishConflict, StoreError, StoreFull
from wheelhouse.server.auth import Access
from wheelhouse.server.bodies import Slot, UploadSlots
from wheelhouse.server.multipart import Rejected, Staged, UploadForm, bad, read_form, refuse
from wheelhouse.server.reply import Reply, text_reply
from wheelhouse.settings import DEFAULT_MAX_UPLOAD_BYTES
from wheelhouse.store.model import Kind, Origin, PublishStatus
from wheelhouse.store.protocols import StoreWriter

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

log = logging.getLogger(__name__)

#: Seconds a client turned away for want of a slot is told to wait (twine and uv retry 503).
_RETRY_AFTER = 5


@dataclass(frozen=True, kw_only=True)
class UploadOptions:
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    allow_local_versions: bool = False
    allow_build_tags: bool = False
    #: seconds each MiB of the body may take to arrive.
    stall_timeout: float = 30.0
    #: shared by every request of the app; None: no cap.
    slots: UploadSlots | None = None


# -- validation -------------------------------------------------------------------------------


def _one(fields: Mapping[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1 and len(set(values)) > 1:
        raise bad(f"the form field {name!r} is given more than once with different values")
    return values[0]


def _check_form(form: UploadForm, options: UploadOptions) -> tuple[str, str | None]:
    """Validate the form and the filename (the store checks the file when it publishes it);
    returns (filename, requires_python from the form for sdists, whose PKG-INFO the store
    does not keep)."""
    fields = form.fields
    action = _one(fields, ":action")
    if action != "file_upload":
        raise bad(f"unsupported :action {action!r}: this index accepts only file_upload")
    protocol = _one(fields, "protocol_version")
    if protocol is not None and protocol != "1":
        raise bad(f"unsupported protocol_version {protocol!r}: this index speaks version 1")
    try:
        # The archive itself is checked by Store.publish, which every upload goes through.
        dist = parse_filename(form.filename, strict=True)
    except InvalidDistribution as e:
        raise bad(e.message) from None
    filename, project, version = form.filename, dist.project, dist.version
    if version.local is not None and not options.allow_local_versions:
        raise bad(f"{filename}: local versions ({version}) are not accepted here: "
                   f"installers let =={version.public} match them, so they could shadow the "
                   "release; publish a new version (or start the server with "
                   "--allow-local-versions)")
    if dist.build and not options.allow_build_tags:
        raise bad(f"{filename}: build tags are not accepted here: installers prefer the "
                   "highest build tag, so one could shadow a published wheel; publish a new "
                   "version (or start the server with --allow-build-tags)")
    kind = "bdist_wheel" if dist.kind is Kind.WHEEL else "sdist"
    filetype = _one(fields, "filetype")
    if filetype is not None and filetype != kind:
        raise bad(f"{filename}: filetype {filetype!r} does not fit the filename ({kind})")
    name = _one(fields, "name")
    if name is not None and canonicalize_name(name) != project:
        raise bad(f"{filename}: the form names project {name!r}, the filename {project!r}")
    form_version = _one(fields, "version")
    if form_version is not None:
        try:
            same_version = Version(form_version) == version
        except InvalidVersion:
            same_version = False
        if not same_version:
            raise bad(f"{filename}: the form says version {form_version!r}, the filename "
                       f"{version}")
    sha256 = _one(fields, "sha256_digest")
    blake2 = _one(fields, "blake2_256_digest")
    if sha256 is None and blake2 is None:
        raise bad("the upload has no sha256_digest (or blake2_256_digest) to check it by")
    if sha256 is not None and sha256.strip().lower() != form.sha256:
        raise bad(f"{filename}: sha256_digest does not match the uploaded bytes "
                   f"(they hash to {form.sha256}); the upload was corrupted")
    if blake2 is not None and blake2.strip().lower() != form.blake2_256:
        raise bad(f"{filename}: blake2_256_digest does not match the uploaded bytes; "
                   "the upload was corrupted")
    requires_python = _one(fields, "requires_python") or None
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier:
            raise bad(f"requires_python {requires_python!r} is not a valid specifier") from None
    return filename, requires_python if dist.kind is Kind.SDIST else None


# -- the endpoint -----------------------------------------------------------------------------


def handle_upload(
    environ: WSGIEnvironment,
    *,
    store: StoreWriter,
    access: Access,
    options: UploadOptions,
    on_published: Callable[[], object],
) -> Reply:
    """Answer one POST to the upload URL. Never raises for bad input; ``on_published`` is
    called after a new file is committed (the server refreshes its pages with it)."""
    denied = access.upload_denied(environ)
    if denied is not None:
        return denied
    slot = options.slots.take() if options.slots is not None else None
    if options.slots is not None and slot is None:
        return text_reply(
            "503 Service Unavailable",
            f"this index is already reading {options.slots.n} uploads; try again in a few "
            "seconds",
            ("Retry-After", str(_RETRY_AFTER)), ("Cache-Control", "no-store"),
        )
    try:
        return _handle(environ, store=store, options=options, on_published=on_published,
                       slot=slot)
    finally:
        if options.slots is not None:
            options.slots.give(slot)


def _handle(
    environ: WSGIEnvironment,
    *,
    store: StoreWriter,
    options: UploadOptions,
    on_published: Callable[[], object],
    slot: Slot | None = None,
) -> Reply:
    staged = Staged()
    try:
        form = read_form(environ, store, limit=options.max_upload_bytes,
                         stall_timeout=options.stall_timeout, staged=staged,
                         on_progress=slot.progress if slot is not None else None)
        if slot is not None:
            slot.done_reading()
        filename, requires_python = _check_form(form, options)
        provenance = {
            "upload": {
                "user_agent": environ.get("HTTP_USER_AGENT", ""),
                "remote_addr": environ.get("REMOTE_ADDR", ""),
            }
        }
        try:
            result = store.publish(
                form.path, filename=filename, origin=Origin.UPLOADED, provenance=provenance,
                expected_sha256=form.sha256, consume=True, requires_python=requires_python,
            )
        except PublishConflict as e:
            # twine --skip-existing recognises 409; the phrase is PyPI's.
            raise refuse(409, f"File already exists: {e.message}. {e.hint or ''}".strip(),
                          reason="File already exists") from None
        except InvalidDistribution as e:
            raise bad(e.message) from None
        except StoreFull:
            raise
        except (StoreError, OSError):
            # Not the client's fault: 503 tells twine and uv to retry, which is safe because a
            # repeated upload of the same bytes is a no-op.
            log.exception("could not publish the upload of %s", filename)
            raise refuse(503, "the store could not take the file just now; try again",
                          reason="Service Unavailable") from None
    except Rejected as r:
        return r.reply
    except StoreFull as e:
        # Not the client's fault, and retrying soon will not help: 507, which twine shows
        # with this reason, not a 503 it would retry five times. Nothing was kept: the
        # staged file goes below, and the store removes what it had written.
        log.error("upload refused, the store's disk is full: %s", e.message)
        needed = f" ({e.needed} bytes)" if e.needed else ""
        return refuse(507, f"the index's disk is full: the upload{needed} was not stored and "
                      "nothing of it was kept; try again once its operator has freed space",
                      reason="Insufficient Storage").reply
    except StoreError as e:
        # The staging area cannot be written for another reason: as a failed publish.
        log.error("could not stage an upload: %s", e.message)
        return refuse(503, "the store could not take the file just now; try again",
                      reason="Service Unavailable").reply
    finally:
        if staged.path is not None:
            # publish(consume=True) moved or removed it; this covers every earlier exit.
            staged.path.unlink(missing_ok=True)
    if result.status is PublishStatus.IDENTICAL:
        log.info("upload of %s: already published with the same bytes", filename)
        return text_reply("200 OK", f"{filename} was already published with these bytes")
    on_published()
    log.info("published upload %s (%d bytes)", filename, form.size)
    return text_reply("200 OK", f"published {filename}")
