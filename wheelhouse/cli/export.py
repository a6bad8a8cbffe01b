"""``wheelhouse export``: the index as static files for nginx, asking for the read token when the
store needs one."""

from __future__ import annotations

from pathlib import Path

import click

from wheelhouse.cli.common import config_option, settings_for, store_option
from wheelhouse.errors import UsageError
from wheelhouse.options import resolve_token


@click.command()
@click.argument("out")
@store_option
@config_option
@click.option("--read-token-file", type=click.Path(path_type=Path, dir_okay=False),
              help="The token readers must present; writes OUT.nginx.conf and OUT.htpasswd "
              "beside OUT, an nginx configuration that asks for it [env "
              "WHEELHOUSE_READ_TOKEN]. Needed for a store served with a read token.")
@click.option("--public", is_flag=True,
              help="Export a read-protected store without asking for its token.")
@click.pass_context
def export(ctx: click.Context, out: str, store: Path | str | None,
           config_file: Path | None, read_token_file: Path | None, public: bool) -> None:
    """Write the index as static files in OUT, for nginx or any static web server.

    \b
    OUT gets simple/ (HTML and PEP 691 JSON pages), files/ (hard links into the store where
    possible, else copies) and links/ (for --find-links). A previous export in OUT is
    replaced atomically; any other non-empty OUT is refused. server/nginx.conf serves it;
    with a read token, OUT.nginx.conf (written beside OUT) serves it to token holders only.

    \b
    OUT may be s3://BUCKET/PREFIX (endpoint and keys from AWS_* / ~/.aws): the same tree
    written into a bucket for a CDN, incrementally (files once, pages when they change;
    the files first, the project list last).

    \b
    Example:
      wheelhouse export --store /srv/wheelhouse /srv/www/wheels
      wheelhouse export --store /srv/wheelhouse s3://wheels-cdn/simple-index
    """
    from wheelhouse.export import export as run_export

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = settings_for(ctx, store=store)
    if out.startswith("s3://"):
        _to_bucket(settings.store_location, settings.catalogue, out, public)
        return
    if "://" in out:
        raise UsageError(f"{out} is neither a directory nor an s3:// URL",
                         hint="export to a directory, or to s3://BUCKET/PREFIX")
    if settings.store_url is not None or settings.catalogue is not None:
        raise UsageError(f"an export of the shared store {settings.store_location} into a "
                         "directory is not supported yet",
                         hint="export it to a bucket (s3://…) instead")
    token = None if public else resolve_token("read", read_token_file)
    summary = run_export(settings.store, Path(out), read_token=token, public=public)
    click.echo(f"Exported {summary.files} files in {summary.projects} projects from "
               f"{settings.store} to {summary.out} ({summary.linked} linked to the store, "
               f"{summary.reused} kept from the previous export, {summary.copied} copied)")
    if summary.nginx_conf is not None:
        click.echo(f"Reading needs the token: serve it with nginx -p {summary.out.parent} "
                   f"-c {summary.nginx_conf} (user __token__, the token as password)")


def _to_bucket(store: Path | str, catalogue: str | None, out: str, public: bool) -> None:
    from wheelhouse.bucket_export import export_to_bucket
    from wheelhouse.store.backends import open_store

    opened = open_store(store, catalogue=catalogue, readonly=True)
    summary = export_to_bucket(opened, out, public=public)
    click.echo(f"Exported {summary.files} files in {summary.projects} projects from "
               f"{store} to {summary.url} ({summary.put} objects written, {summary.kept} "
               "already there)")
