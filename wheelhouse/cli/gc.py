"""``wheelhouse gc``: remove what the store and the engine no longer need (staging debris,
superseded failures and their logs, unused derived images, the build caches of images that
are gone), or list it with ``--dry-run``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from wheelhouse.cli.common import config_option, human_size, settings_for, store_option


@click.command()
@store_option
@config_option
@click.option("--dry-run", is_flag=True, help="List what would go and how much space; "
              "remove nothing.")
@click.option("--older-than", type=click.FloatRange(min=0), default=24.0, show_default=True,
              metavar="HOURS", help="Loose staging entries and unreferenced logs older than "
              "this go (a dead writer's entries go at once).")
@click.option("--images-unused-days", type=click.FloatRange(min=0), default=30.0,
              show_default=True, metavar="DAYS",
              help="Derived builder images no build used for this long go (those whose base "
              "image is gone always do).")
@click.option("--keep-images", is_flag=True, help="Leave derived builder images and build "
              "caches alone.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def gc(ctx: click.Context, store: Path | None, config_file: Path | None, dry_run: bool,
       older_than: float, images_unused_days: float, keep_images: bool, as_json: bool) -> None:
    """Remove staging debris, superseded build failures and their logs, derived builder
    images whose base is gone or that no build used for a while, and the build caches of
    builder images that are gone. Published files, their
    metadata and the logs their provenance names are never removed, and nothing a running
    build holds is (gc takes the same locks)."""
    from wheelhouse.cleanup import collect
    from wheelhouse.errors import StoreError
    from wheelhouse.store.store import Store

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = settings_for(ctx, store=store)
    if settings.store_url is not None or settings.catalogue is not None:
        from wheelhouse.errors import UsageError

        raise UsageError(f"`wheelhouse gc` does not clean the shared store "
                         f"{settings.store_location} yet",
                         hint="published files never need collecting; staging debris on "
                         "each machine is removed whenever a writer opens the store")
    if not Store.exists(settings.store):
        raise StoreError(f"no wheelhouse store at {settings.store}",
                         hint="point --store at an existing store")
    done = collect(settings.store, older_than=older_than * 3600,
                   image_days=None if keep_images else images_unused_days,
                   engine=settings.engine, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "bytes": done.size,
                               "items": [vars(i) for i in done.items],
                               "kept": list(done.kept)}, indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for item in done.items:
        click.echo(f"{verb:<12} {item.kind:<14} {item.what}  ({human_size(item.size)}; {item.why})")
    for what in done.kept:
        click.echo(f"{'kept':<12} {what}")
    click.echo(f"{'Would free' if dry_run else 'Freed'} {human_size(done.size)} "
               f"({len(done.items)} items) in {settings.store}")
