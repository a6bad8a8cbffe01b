"""A complete HTTP answer as data, shared by the WSGI hot path, the Flask views, the upload
endpoint and the access checks, so each can decide an answer without a framework."""

from __future__ import annotations

from dataclasses import dataclass

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class Reply:
    """A complete HTTP answer. ``body`` is the GET body; a HEAD answer drops it."""

    status: str
    headers: Headers
    body: bytes = b""


def text_reply(status: str, message: str, *extra: tuple[str, str]) -> Reply:
    """A plain-text answer; the message is what twine, pip and uv show the user."""
    body = (message + "\n").encode("utf-8")
    return Reply(
        status=status,
        headers=(
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *extra,
        ),
        body=body,
    )
