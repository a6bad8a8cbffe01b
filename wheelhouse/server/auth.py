"""Who may read and who may upload: HTTP Basic with a shared token as the password, as PyPI's
API tokens work (user ``__token__`` by convention; the user name carries no meaning here).

Reading is open unless a read token is configured; uploading needs the upload token, which
also grants reading. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wheelhouse.errors import UsageError
from wheelhouse.server.reply import Reply, text_reply

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: The realm pip and uv show when they prompt; also names the server in keyring entries.
REALM = "wheelhouse"

#: Paths anyone may read even when reading needs a token: load balancers probe it.
_OPEN_PATHS = frozenset({"/health"})


def check_token(token: str | None, *, what: str) -> str | None:
    """Refuse unusable tokens at start-up rather than at the first request."""
    if token is None:
        return None
    if not token or token != token.strip() or any(c in token for c in "\r\n"):
        raise UsageError(
            f"the {what} token is empty or has surrounding whitespace or line breaks",
            hint="use a random string such as the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
        )
    return token


def basic_password(environ: WSGIEnvironment) -> str | None:
    """The password of an ``Authorization: Basic`` header, or None if there is none."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None


def _same(offered: str, expected: str) -> bool:
    # compare_digest on str accepts only ASCII; on bytes it takes anything, in constant time
    # for equal lengths (the length itself is not a secret worth protecting).
    return hmac.compare_digest(offered.encode("utf-8"), expected.encode("utf-8"))


def _challenge(message: str) -> Reply:
    return text_reply(
        "401 Unauthorized", message,
        ("WWW-Authenticate", f'Basic realm="{REALM}"'),
        ("Cache-Control", "no-store"),
    )


@dataclass(frozen=True, kw_only=True)
class Access:
    """The configured tokens. ``None`` means: uploads off, or reading open."""

    upload_token: str | None = None
    read_token: str | None = None

    @property
    def uploads_enabled(self) -> bool:
        return self.upload_token is not None

    @property
    def read_protected(self) -> bool:
        return self.read_token is not None

    def may_read(self, environ: WSGIEnvironment) -> bool:
        """Whether the request's credentials allow reading (always, when reading is open)."""
        if self.read_token is None:
            return True
        password = basic_password(environ)
        return password is not None and (
            _same(password, self.read_token)
            or (self.upload_token is not None and _same(password, self.upload_token))
        )

    def read_denied(self, environ: WSGIEnvironment) -> Reply | None:
        """None when the request may read; otherwise the 401 to send."""
        if environ.get("PATH_INFO", "") in _OPEN_PATHS or self.may_read(environ):
            return None
        # Always 401, never 403: pip and uv retry a 401 with credentials from netrc or
        # keyring, and a wrong token must not tell a prober anything a missing one does not.
        return _challenge(
            "this index needs a token to read: pass it as the password of HTTP Basic auth, "
            "e.g. --index-url http://__token__:TOKEN@HOST/simple/"
        )

    def upload_denied(self, environ: WSGIEnvironment) -> Reply | None:
        """None when the request may upload; otherwise the 401/403 to send."""
        if self.upload_token is None:
            return text_reply(
                "403 Uploads are disabled",
                "uploads are disabled on this server; start it with an upload token "
                "(WHEELHOUSE_UPLOAD_TOKEN or an upload token file) to accept them",
            )
        password = basic_password(environ)
        if password is None:
            return _challenge(
                "uploading needs the upload token: user __token__, the token as password "
                "(twine upload -u __token__, or uv publish --token)"
            )
        if not _same(password, self.upload_token):
            return text_reply(
                "403 Invalid upload token",
                "the upload token is wrong; nothing was stored",
                ("Cache-Control", "no-store"),
            )
        return None
