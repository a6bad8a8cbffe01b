"""``wheelhouse list``: what the store holds, or the build failures it remembers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from wheelhouse.cli.common import config_option, human_size, settings_for, store_option


@click.command(name="list")
@click.argument("project", required=False)
@store_option
@config_option
@click.option("--failures", is_flag=True, help="List recorded build failures instead.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, project: str | None, store: Path | None,
          config_file: Path | None, failures: bool, as_json: bool) -> None:
    """List what the store holds (optionally for one PROJECT), with origin and size."""
    from wheelhouse.ledger import failure_json, open_ledger
    from wheelhouse.store.backends import open_store

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = settings_for(ctx, store=store)
    st = open_store(settings.store_location, catalogue=settings.catalogue, readonly=True)
    if failures:
        fails = open_ledger(st.root, catalogue=settings.catalogue, readonly=True).failures()
        if as_json:
            click.echo(json.dumps([failure_json(f) for f in fails], indent=2))
        for failure in [] if as_json else fails:
            click.echo(f"{failure.project}=={failure.version} {failure.target}: "
                       f"{failure.message} (log: {failure.log})")
        return
    files = st.files(project)
    if as_json:
        click.echo(json.dumps([
            {"filename": f.filename, "project": f.project, "version": f.version,
             "sha256": f.sha256, "size": f.size, "upload_time": f.upload_time,
             "origin": f.origin.value, "yanked": f.yanked, "provenance": dict(f.provenance)}
            for f in files], indent=2))
        return
    # Columns as wide as their longest entry, so long filenames do not push the others out.
    name_width = max((len(f.filename) for f in files), default=0)
    origin_width = max((len(f.origin.value) for f in files), default=0)
    for f in files:
        click.echo(f"{f.filename:<{name_width}}  {f.origin.value:<{origin_width}}  "
                   f"{f.size:>13,d}")
    total = sum(f.size for f in files)
    click.echo(f"{len(files)} files in {len({f.project for f in files})} projects, "
               f"{human_size(total)}, in {settings.store}")
