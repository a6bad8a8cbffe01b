"""The index server: a Flask app over a store (``create_app``) and the built-in way to run it
(``serve``), both configured by one ``ServerOptions``. Modules: ``state`` (rendered snapshots
of the catalogue), ``hot`` (answers for the hot pages, also as a WSGI layer in front of Flask),
``app`` (routes), ``serving``, ``auth`` (tokens), ``upload`` (the legacy upload API),
``fallthrough`` (upstream pages for names the store does not host), ``reply`` (answers as
data).
"""
