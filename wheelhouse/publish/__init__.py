"""Publishing to a shared index: what the remote lacks is uploaded with the legacy upload API
(``remote``), each file as the multipart form twine sends (``form``)."""

from wheelhouse.publish.remote import (
    Conflict,
    PublishError,
    PublishReport,
    publish_missing,
    simple_url_for,
)

__all__ = ["Conflict", "PublishError", "PublishReport", "publish_missing", "simple_url_for"]
