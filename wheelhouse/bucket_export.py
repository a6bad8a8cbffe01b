"""Static export of the index into a bucket (``wheelhouse export s3://BUCKET/PREFIX``), for a
CDN in front of object storage, as PyTorch's download site is: the same layout and the same
page bytes as ``export`` writes into a directory, written incrementally.

What an export writes, under the prefix::

    files/<project>/<filename>[.metadata]         once; keys never rewritten (conditional put)
    simple/<project>/index.html, index.json       only when their bytes changed
    simple/index.html, simple/index.json, links/index.html
    .wheelhouse-export.json                       what was exported, and when

Order matters to readers of a live bucket: the files and their metadata go first, then the
project pages, then the project list, so no page ever links to an object not there yet. What
is already in the bucket is learnt from one listing: files by key (they never change), pages
by their MD5 (the ETag of a single-part put), so a second export of an unchanged store puts
nothing but the marker.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from packaging.utils import NormalizedName

from wheelhouse.errors import StoreError, UsageError
from wheelhouse.simple import render
from wheelhouse.store.model import Kind, StoredFile
from wheelhouse.store.protocols import StoreReader
from wheelhouse.store.s3 import S3Blobs

MARKER = ".wheelhouse-export.json"
_HTML = "text/html; charset=utf-8"
_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True, kw_only=True)
class BucketExportSummary:
    """What an export to a bucket did: ``put`` objects written, ``kept`` already there."""

    url: str
    generation: int
    projects: int
    files: int
    put: int
    kept: int


def export_to_bucket(store: StoreReader, url: str, *, public: bool = False
                     ) -> BucketExportSummary:
    """Write the index of ``store`` into the bucket at ``url``. A read-protected store is
    refused unless ``public``: a bucket behind a CDN has no password. Raises StoreError
    (the bucket, the store) or UsageError."""
    if store.read_protected() and not public:
        raise UsageError(
            f"the store at {store.location} is read-protected (a server ran it with a read "
            f"token); an export to {url} would publish it to anyone who can read the bucket",
            hint="pass --public to export it openly on purpose, or export to a directory "
            "with --read-token-file for nginx",
        )
    blobs = S3Blobs(url)
    blobs.check()
    generation = store.generation()
    files = store.files()
    there = _listing(blobs)
    counts = {"put": 0, "kept": 0}

    def page(rel: str, data: bytes, content_type: str) -> None:
        if there.get(blobs.key(rel)) == hashlib.md5(data, usedforsecurity=False).hexdigest():
            counts["kept"] += 1
            return
        _put(blobs, rel, data, content_type)
        counts["put"] += 1

    by_project: dict[NormalizedName, list[StoredFile]] = {}
    for f in files:
        by_project.setdefault(f.project, []).append(f)
        for rel, data in _objects(store, f, there, blobs):
            if data is None:
                counts["kept"] += 1
            else:
                blobs.put_new(rel, data, hashlib.sha256(data).hexdigest())
                counts["put"] += 1
    for project, project_files in sorted(by_project.items()):
        page(f"simple/{project}/index.html", render.project_html(project, project_files).body,
             _HTML)
        page(f"simple/{project}/index.json", render.project_json(project, project_files).body,
             _JSON)
    names = sorted(by_project)
    page("simple/index.html", render.project_list_html(names).body, _HTML)
    page("simple/index.json", render.project_list_json(names).body, _JSON)
    page("links/index.html", render.links_html(files).body, _HTML)
    marker = {"store": store.location, "generation": generation, "projects": len(names),
              "files": len(files), "exported-at": datetime.now(UTC).strftime(
                  "%Y-%m-%dT%H:%M:%SZ")}
    _put(blobs, MARKER, (json.dumps(marker, indent=2) + "\n").encode(), "application/json")
    return BucketExportSummary(url=blobs.url, generation=generation, projects=len(names),
                               files=len(files), put=counts["put"], kept=counts["kept"])


def _objects(store: StoreReader, f: StoredFile, there: dict[str, str], blobs: S3Blobs
             ) -> list[tuple[str, bytes | None]]:
    """The file and its metadata: (key, bytes to put) or (key, None) when already there."""
    rel = f"files/{f.relpath}"
    out: list[tuple[str, bytes | None]] = []
    if f.kind is Kind.WHEEL and f.metadata_sha256 is not None:
        if blobs.key(rel + ".metadata") in there:
            out.append((rel + ".metadata", None))
        else:
            meta = store.read_metadata(f)
            if meta is None:
                raise StoreError(f"the metadata of {f.relpath} is advertised but missing")
            out.append((rel + ".metadata", meta))
    if blobs.key(rel) in there:
        out.append((rel, None))
    else:
        data = store.local_file(f).read_bytes()
        if hashlib.sha256(data).hexdigest() != f.sha256:
            raise StoreError(f"{f.relpath} does not match its catalogue hash",
                             hint="the store was modified by hand; restore the file")
        out.append((rel, data))
    return out


def _listing(blobs: S3Blobs) -> dict[str, str]:
    """Every key under the prefix, with its ETag (an MD5 for single-part puts)."""
    found: dict[str, str] = {}
    try:
        pages = blobs.client().get_paginator("list_objects_v2")
        for listing in pages.paginate(Bucket=blobs.bucket, Prefix=blobs.prefix):
            for obj in listing.get("Contents", []):
                found[obj["Key"]] = str(obj.get("ETag", "")).strip('"')
    except Exception as e:
        raise StoreError(f"cannot list {blobs.url}: {e}",
                         hint="check the bucket, AWS_ENDPOINT_URL and the credentials") from None
    return found


def _put(blobs: S3Blobs, rel: str, data: bytes, content_type: str) -> None:
    """A page or the marker: replaced in place (pages change as the store grows)."""
    args: dict[str, Any] = {"Bucket": blobs.bucket, "Key": blobs.key(rel), "Body": data,
                            "ContentType": content_type}
    try:
        blobs.client().put_object(**args)
    except Exception as e:
        raise StoreError(f"cannot write {blobs.url_of(rel)}: {e}",
                         hint="check the bucket's permissions and the credentials") from None
