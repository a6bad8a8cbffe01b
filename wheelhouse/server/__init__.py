"""The index server: a Flask app over a read-only store (``create_app``) and the built-in way to
run it (``serve``). Modules: ``state`` (rendered snapshots of the catalogue), ``hot`` (answers
for the hot pages, also as a WSGI layer in front of Flask), ``app`` (routes), ``serving``.
"""

from wheelhouse.server.app import create_app
from wheelhouse.server.serving import IndexServer, bind_socket, make_server, serve

__all__ = ["IndexServer", "bind_socket", "create_app", "make_server", "serve"]
