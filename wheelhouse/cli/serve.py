"""``wheelhouse serve``: the index, under granian by default, with its limits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from wheelhouse.cli.common import config_option, settings_for, store_option
from wheelhouse.options import server_options

SERVE_EXAMPLES = """
\b
Examples:
  wheelhouse serve
  wheelhouse serve --store /srv/wheelhouse --host 127.0.0.1 --port 8080
  wheelhouse serve --upload-token-file /run/secrets/wheelhouse-token --fall-through
  wheelhouse serve --workers 4 --threads 8       # granian, the default server
  wheelhouse serve --server builtin             # werkzeug, for development only
\b
Then, in a Dockerfile or CI job:
  pip install --only-binary :all: --index-url http://HOST:PORT/simple/ -r requirements.txt
  pip install --only-binary :all: --no-index --find-links http://HOST:PORT/links/ -r ...
  twine upload --repository-url http://HOST:PORT/legacy/ -u __token__ -p TOKEN dist/*
"""


@click.command(epilog=SERVE_EXAMPLES)
@store_option
@config_option
@click.option("--host", help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: 8000].")
@click.option("--upload-token-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Accept uploads at /legacy/ from clients presenting the token in this file "
              "(HTTP Basic, user __token__) [env WHEELHOUSE_UPLOAD_TOKEN holds the token].")
@click.option("--read-token-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Require this token for reading too [env WHEELHOUSE_READ_TOKEN].")
@click.option("--max-upload-size", type=click.IntRange(min=1), metavar="BYTES",
              help="Largest accepted upload [default: 1 GiB].")
@click.option("--allow-local-versions", is_flag=True, default=None,
              help="Accept uploads with local versions (1.0+abc), which ==1.0 also matches.")
@click.option("--allow-build-tags", is_flag=True, default=None,
              help="Accept uploaded wheels with build tags, which installers prefer.")
@click.option("--fall-through/--no-fall-through", default=None,
              help="Serve projects the store does not host from the upstream index "
              "(--index-url) [default: off].")
@click.option("--index-url", help="The upstream for --fall-through [default: PyPI].")
@click.option("--server", "server_kind", type=click.Choice(["auto", "builtin", "granian"]),
              default="auto", show_default=True,
              help="granian: the production server (auto is granian); builtin: werkzeug, "
              "one process, for development only (a few dozen idle connections stop it).")
@click.option("-w", "--workers", type=click.IntRange(min=1),
              help="granian worker processes [default: 2].")
@click.option("--threads", type=click.IntRange(min=1),
              help="Threads per process [default: 8 with granian, 32 built-in].")
@click.option("--max-connections", type=click.IntRange(min=1), metavar="N",
              help="Open connections per granian worker; more wait [default: 4096].")
@click.option("--header-timeout", type=click.FloatRange(min=0.001), metavar="SECONDS",
              help="Time a client has to send its request headers, and a kept-alive "
              "connection may stay idle (granian) [default: 10].")
@click.option("--upload-slots", type=click.IntRange(min=1), metavar="N",
              help="Uploads read at once per process; more get 503 [default: 2].")
@click.option("--upload-stall-timeout", type=click.FloatRange(min=0.001), metavar="SECONDS",
              help="Time each MiB of an upload may take; slower ones are refused (408) "
              "[default: 30].")
@click.option("--upstream-timeout", type=click.FloatRange(min=0.001), metavar="SECONDS",
              help="Time a --fall-through request waits for the upstream before 504 "
              "[default: 10].")
@click.pass_context
def serve(ctx: click.Context, store: Path | None, config_file: Path | None,
          host: str | None, port: int | None, upload_token_file: Path | None,
          read_token_file: Path | None, max_upload_size: int | None,
          allow_local_versions: bool | None, allow_build_tags: bool | None,
          fall_through: bool | None, index_url: str | None,
          server_kind: Literal["auto", "builtin", "granian"],
          workers: int | None, threads: int | None, max_connections: int | None,
          header_timeout: float | None, upload_slots: int | None,
          upload_stall_timeout: float | None, upstream_timeout: float | None) -> None:
    """Serve the store as a PEP 503/691 simple index at http://HOST:PORT/simple/.

    Runs granian, a production server: slow or idle clients hold a connection for at most
    --header-timeout, never a thread. Projects the store hosts are served only from the
    store, even with --fall-through, so an upstream project of the same name can never take
    their place (dependency confusion).
    """
    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = settings_for(ctx, store=store, host=host, port=port, fall_through=fall_through,
                         index_url=index_url)
    options = server_options(
        settings, upload_token_file=upload_token_file, read_token_file=read_token_file,
        max_upload_bytes=max_upload_size, server=server_kind,
        workers=workers, threads=threads, allow_local_versions=allow_local_versions,
        allow_build_tags=allow_build_tags, max_connections=max_connections,
        header_timeout=header_timeout, upload_slots=upload_slots,
        upload_stall_timeout=upload_stall_timeout, upstream_timeout=upstream_timeout,
    )
    if options.server == "granian":
        from wheelhouse.server.production import serve_production

        serve_production(options, on_ready=click.echo)
    else:
        from wheelhouse.server.production import check_store
        from wheelhouse.server.serving import serve as run_server

        check_store(options.store, create=True, catalogue=options.catalogue)

        click.echo("warning: the built-in server is for development; a few dozen idle "
                   "connections stop it (use the default, granian, for a shared index)",
                   err=True)
        run_server(options, on_ready=click.echo)
