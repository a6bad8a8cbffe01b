"""Publishing to a shared index: what the remote lacks is uploaded with the legacy upload API
(``remote``), each file as the multipart form twine sends (``form``)."""
