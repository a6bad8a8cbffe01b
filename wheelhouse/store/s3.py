"""Published bytes in S3-compatible object storage (``--store s3://BUCKET/PREFIX``): the keys
``files/<project>/<filename>`` (and ``.metadata``) under the prefix, as a local store lays
them out, written only with a conditional put (``If-None-Match: *``) so no writer ever
replaces a key another published.

The endpoint and credentials come from boto3's standard chain (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``…, ``~/.aws/config``), so AWS, MinIO, Ceph, R2 and SeaweedFS work
unchanged. Every failure becomes a ``StoreError`` naming the bucket and what to check.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wheelhouse.errors import StoreError

SCHEME = "s3://"
#: Bytes per block when a download is streamed through the server.
BLOCK = 1 << 20


def parse(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (``bucket``, ``some/prefix/``)."""
    bucket, _, prefix = url[len(SCHEME):].partition("/")
    if len(bucket) < 3 or "/" in bucket:
        raise StoreError(f"{url} does not name a bucket",
                         hint="write the store as s3://BUCKET or s3://BUCKET/PREFIX")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


class S3Blobs:
    """The store's objects in one bucket under one prefix. Thread-safe; a new client after
    a fork (boto3 clients must not cross one)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.bucket, self.prefix = parse(url)
        self._guard = threading.Lock()
        self._client: Any = None
        self._pid = -1
        self._signers: dict[str, Any] = {}

    def client(self) -> Any:
        with self._guard:
            if self._client is None or self._pid != os.getpid():
                import boto3
                from botocore.config import Config

                self._client = boto3.session.Session().client(
                    "s3", config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                        max_pool_connections=32, connect_timeout=5,
                                        read_timeout=60))
                self._pid = os.getpid()
            return self._client

    def key(self, rel: str) -> str:
        return self.prefix + rel

    def _fail(self, e: BaseException, doing: str, rel: str = "") -> StoreError:
        where = f"{SCHEME}{self.bucket}/{self.key(rel)}" if rel else self.url
        code = _code(e)
        hint = ("check the store's URL (--store, WHEELHOUSE_STORE), the endpoint "
                "(AWS_ENDPOINT_URL) and the credentials (AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY or ~/.aws)")
        if code in ("NoSuchBucket", "404"):
            return StoreError(f"the bucket {self.bucket} of the store {self.url} does not exist",
                              hint="create the bucket first, or correct --store")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StoreError(f"the S3 server refused access to {where} ({code})",
                              hint="check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                              "(or the profile) and the bucket's permissions")
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return StoreError(f"cannot {doing} {where}: {first}", hint=hint)

    def check(self) -> None:
        """The bucket answers to these credentials (at start, and for /health)."""
        try:
            self.client().head_bucket(Bucket=self.bucket)
        except Exception as e:  # botocore raises many unrelated classes
            raise self._fail(e, "reach") from None

    def put_new(self, rel: str, source: Path | bytes, sha256: str) -> bool:
        """Create ``rel`` with these bytes unless the key exists; False if it did."""
        try:
            if isinstance(source, bytes):
                self.client().put_object(Bucket=self.bucket, Key=self.key(rel), Body=source,
                                         IfNoneMatch="*", Metadata={"sha256": sha256})
            else:
                with source.open("rb") as body:
                    self.client().put_object(Bucket=self.bucket, Key=self.key(rel),
                                             Body=body, IfNoneMatch="*",
                                             Metadata={"sha256": sha256})
        except Exception as e:
            if _code(e) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise self._fail(e, "write", rel) from None
        return True

    def put_unlisted(self, rel: str, source: Path | bytes, sha256: str) -> None:
        """Create ``rel`` for a file the catalogue does not list yet, with the catalogue's
        write lock held: a key already there with other bytes is a dead publisher's
        debris (nobody else writes under the lock), so it is replaced; any key a row lists
        is never written again."""
        if self.put_new(rel, source, sha256) or self.sha256(rel) == sha256:
            return
        self.delete(rel)
        if not self.put_new(rel, source, sha256):
            raise StoreError(f"{self.url_of(rel)} was written by someone else while this "
                             "publisher held the catalogue's write lock",
                             hint="only wheelhouse may write under the store's prefix")

    def fetch(self, rel: str, part: Path, dest: Path, sha256: str) -> None:
        """Download ``rel`` to ``dest`` through ``part``, checked against ``sha256``."""
        from wheelhouse.util import sha256_file

        try:
            self.download(rel, part)
            if sha256_file(part) != sha256:
                raise StoreError(f"{self.url_of(rel)} does not match its catalogue hash",
                                 hint="the object was changed outside wheelhouse")
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)

    def sha256(self, rel: str) -> str | None:
        """The sha256 recorded on ``rel``; None if there is no such key."""
        try:
            head = self.client().head_object(Bucket=self.bucket, Key=self.key(rel))
        except Exception as e:
            if _code(e) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail(e, "read", rel) from None
        return str(head.get("Metadata", {}).get("sha256", "")) or ""

    def delete(self, rel: str) -> None:
        try:
            self.client().delete_object(Bucket=self.bucket, Key=self.key(rel))
        except Exception as e:
            raise self._fail(e, "delete", rel) from None

    def read(self, rel: str) -> bytes:
        try:
            got = self.client().get_object(Bucket=self.bucket, Key=self.key(rel))
            return bytes(got["Body"].read())
        except Exception as e:
            raise self._fail(e, "read", rel) from None

    def stream(self, rel: str, offset: int, length: int) -> Iterator[bytes]:
        """``length`` bytes of ``rel`` from ``offset``, in blocks."""
        if length <= 0:
            return
        try:
            got = self.client().get_object(Bucket=self.bucket, Key=self.key(rel),
                                           Range=f"bytes={offset}-{offset + length - 1}")
        except Exception as e:
            raise self._fail(e, "read", rel) from None
        body = got["Body"]
        try:
            yield from body.iter_chunks(BLOCK)
        finally:
            body.close()

    def download(self, rel: str, dest: Path) -> None:
        try:
            self.client().download_file(self.bucket, self.key(rel), str(dest))
        except Exception as e:
            raise self._fail(e, "download", rel) from None

    def presign(self, rel: str, expires: int = 3600, endpoint: str | None = None) -> str:
        """A URL that GETs ``rel`` for ``expires`` seconds, signed for ``endpoint`` (the
        bucket's public endpoint) or, by default, for the one this client uses."""
        client = self.client() if endpoint is None else self._public(endpoint)
        return str(client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key(rel)},
            ExpiresIn=expires))

    def _public(self, endpoint: str) -> Any:
        # Signing needs no connection: one client per endpoint, made on first use.
        with self._guard:
            client = self._signers.get(endpoint)
            if client is None:
                import boto3

                client = boto3.session.Session().client("s3", endpoint_url=endpoint)
                self._signers[endpoint] = client
            return client

    def url_of(self, rel: str) -> str:
        return f"{SCHEME}{self.bucket}/{self.key(rel)}"


def _code(e: BaseException) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return type(e).__name__
