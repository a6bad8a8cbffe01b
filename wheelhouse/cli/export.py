"""``wheelhouse export``: the index as static files for nginx, asking for the read token when the
store needs one."""

from __future__ import annotations

from pathlib import Path

import click

from wheelhouse.cli.common import config_option, settings_for, store_option
from wheelhouse.options import resolve_token


@click.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@store_option
@config_option
@click.option("--read-token-file", type=click.Path(path_type=Path, dir_okay=False),
              help="The token readers must present; writes OUT.nginx.conf and OUT.htpasswd "
              "beside OUT, an nginx configuration that asks for it [env "
              "WHEELHOUSE_READ_TOKEN]. Needed for a store served with a read token.")
@click.option("--public", is_flag=True,
              help="Export a read-protected store without asking for its token.")
@click.pass_context
def export(ctx: click.Context, out: Path, store: Path | None,
           config_file: Path | None, read_token_file: Path | None, public: bool) -> None:
    """Write the index as static files in OUT, for nginx or any static web server.

    \b
    OUT gets simple/ (HTML and PEP 691 JSON pages), files/ (hard links into the store where
    possible, else copies) and links/ (for --find-links). A previous export in OUT is
    replaced atomically; any other non-empty OUT is refused. server/nginx.conf serves it;
    with a read token, OUT.nginx.conf (written beside OUT) serves it to token holders only.

    \b
    Example:
      wheelhouse export --store /srv/wheelhouse /srv/www/wheels
    """
    from wheelhouse.export import export as run_export

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = settings_for(ctx, store=store)
    token = None if public else resolve_token("read", read_token_file)
    summary = run_export(settings.store, out, read_token=token, public=public)
    click.echo(f"Exported {summary.files} files in {summary.projects} projects from "
               f"{settings.store} to {summary.out} ({summary.linked} linked to the store, "
               f"{summary.reused} kept from the previous export, {summary.copied} copied)")
    if summary.nginx_conf is not None:
        click.echo(f"Reading needs the token: serve it with nginx -p {summary.out.parent} "
                   f"-c {summary.nginx_conf} (user __token__, the token as password)")
